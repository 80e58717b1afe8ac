"""The double-entry ledger: journal validation, floors, builders, and idempotent posting."""

from __future__ import annotations

import pytest

from flamepay import ledger
from flamepay.errors import AlreadyDone, InsufficientFunds
from flamepay.ledger import Entry, Journal, JournalKind
from flamepay.money import fee_for, split_payment
from flamepay.ports import UnitOfWork
from tests.helpers.core_checks import assert_books_balanced, snapshot
from tests.helpers.support import START, World, make_world

U = 7
AVAIL = "user:7:available"
HELD = "user:7:held"


def _as_dict(journal: Journal) -> dict[str, int]:
    return {e.account: e.amount for e in journal.entries}


# --- validation ----------------------------------------------------------------------------
def test_a_journal_must_sum_to_zero():
    with pytest.raises(ValueError, match="sum to zero"):
        Journal("k", JournalKind.ADJUST, (Entry("a", 5), Entry("b", -4)))


def test_a_journal_names_each_account_once():
    with pytest.raises(ValueError, match="twice"):
        Journal("k", JournalKind.ADJUST, (Entry("a", 5), Entry("a", -5)))


def test_a_journal_needs_entries():
    with pytest.raises(ValueError):
        Journal("k", JournalKind.ADJUST, ())


@pytest.mark.parametrize("amount", [1.0, 0.5, True, "100", None])
def test_an_entry_amount_is_int_cents_only(amount):
    with pytest.raises(TypeError):
        Entry("a", amount)


def test_builders_refuse_float_amounts():
    with pytest.raises(TypeError):
        ledger.payin("FP1", 1, U, 100.0, 15)
    with pytest.raises(TypeError):
        ledger.payout_hold(1, U, 10.5)
    with pytest.raises(TypeError):
        fee_for(100.0, 1500)


def test_a_balanced_journal_is_accepted():
    journal = Journal("k", JournalKind.ADJUST, (Entry("a", 5), Entry("b", -3), Entry("c", -2)))
    assert journal.amount_of("a") == 5
    assert journal.amount_of("missing") == 0


# --- fees ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "bp", "fee"),
    [
        (100_00, 1500, 15_00),
        (100_30, 1500, 15_05),  # 15.045 -> half up
        (100_10, 1250, 12_51),  # 12.5125
        (1, 5000, 1),  # 0.5 -> 1
        (1, 4999, 0),
        (3, 5000, 2),  # 1.5 -> 2 (half even would give 2 as well; 2.5 below differs)
        (5, 5000, 3),  # 2.5 -> 3 (half even would give 2)
        (100_00, 0, 0),
        (100_00, 10_000, 100_00),
    ],
)
def test_the_fee_is_rounded_half_up_in_integers(amount, bp, fee):
    assert fee_for(amount, bp) == fee
    assert split_payment(amount, bp) == (fee, amount - fee)


# --- builders ------------------------------------------------------------------------------
def test_payin_entries():
    journal = ledger.payin("FP1", 3, U, 100_30, 15_05)
    assert (journal.key, journal.kind, journal.user_id, journal.order_id) == (
        "payin:FP1",
        JournalKind.PAYIN,
        U,
        3,
    )
    assert _as_dict(journal) == {ledger.CLEARING: -100_30, AVAIL: 85_25, ledger.FEES: 15_05}


def test_a_zero_fee_payin_has_no_fee_leg():
    assert _as_dict(ledger.payin("FP1", 3, U, 100_00, 0)) == {
        ledger.CLEARING: -100_00,
        AVAIL: 100_00,
    }


@pytest.mark.parametrize("fee", [15_05, 0])
def test_a_refund_is_the_exact_negation_of_the_payin(fee):
    payin = ledger.payin("FP1", 3, U, 100_30, fee)
    refund = ledger.refund("FP1", 3, U, payin.entries)
    assert (refund.key, refund.kind) == ("refund:FP1", JournalKind.REFUND)
    assert _as_dict(refund) == {account: -x for account, x in _as_dict(payin).items()}


def test_payout_builders():
    hold = ledger.payout_hold(4, U, 50_00)
    post = ledger.payout_post(4, U, 50_00, 2_00)
    void = ledger.payout_void(4, U, 50_00)
    assert (hold.key, post.key, void.key) == ("payout-hold:4", "payout-post:4", "payout-void:4")
    assert {j.payout_id for j in (hold, post, void)} == {4}
    assert _as_dict(hold) == {AVAIL: -50_00, HELD: 50_00}
    assert _as_dict(post) == {HELD: -50_00, ledger.PAYOUTS_SENT: 48_00, ledger.FEES: 2_00}
    assert _as_dict(ledger.payout_post(4, U, 50_00, 0)) == {
        HELD: -50_00,
        ledger.PAYOUTS_SENT: 50_00,
    }
    assert _as_dict(void) == {HELD: -50_00, AVAIL: 50_00}


def test_adjustment_entries():
    journal = ledger.adjustment("x1", U, -3_00, "chargeback fee")
    assert (journal.key, journal.memo) == ("adjust:x1", "chargeback fee")
    assert _as_dict(journal) == {ledger.ADJUSTMENTS: 3_00, AVAIL: -3_00}


# --- floors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("journal", "floored"),
    [
        (ledger.payin("FP1", 3, U, 100_00, 15_00), set()),
        (ledger.refund("FP1", 3, U, ledger.payin("FP1", 3, U, 100_00, 15_00).entries), set()),
        (ledger.payout_hold(1, U, 10_00), {AVAIL}),
        (ledger.payout_post(1, U, 10_00, 1_00), {HELD}),
        (ledger.payout_void(1, U, 10_00), {HELD}),
        (ledger.adjustment("a", U, -1_00, "r"), {AVAIL}),
        (ledger.adjustment("a", U, 1_00, "r"), set()),
        # A refund may overdraw available only: any other user account it lowers is floored.
        (
            Journal("refund:X", JournalKind.REFUND, (Entry(HELD, -1), Entry(ledger.FEES, 1))),
            {HELD},
        ),
    ],
    ids=["payin", "refund", "hold", "post", "void", "adjust-down", "adjust-up", "refund-held"],
)
def test_floors(journal, floored):
    assert journal.floors() == floored


def test_a_refund_may_take_available_below_zero():
    payin = ledger.payin("FP1", 3, U, 100_00, 15_00)
    balances = {ledger.CLEARING: -100_00, AVAIL: 10_00, ledger.FEES: 15_00}
    after = ledger.apply_to_balances(balances, ledger.refund("FP1", 3, U, payin.entries))
    assert after == {ledger.CLEARING: 0, AVAIL: -75_00, ledger.FEES: 0}
    assert balances[AVAIL] == 10_00  # the input is not changed


@pytest.mark.parametrize(
    "journal",
    [
        ledger.payout_hold(1, U, 10_01),
        ledger.adjustment("a", U, -10_01, "r"),
        Journal(
            "payin:X", JournalKind.PAYIN, (Entry(AVAIL, -10_01), Entry(ledger.CLEARING, 10_01))
        ),
    ],
    ids=["hold", "adjust", "payin-kind"],
)
def test_nothing_but_a_refund_may_take_available_below_zero(journal):
    with pytest.raises(InsufficientFunds) as refused:
        ledger.apply_to_balances({AVAIL: 10_00}, journal)
    assert refused.value.account == AVAIL


def test_held_may_not_go_below_zero():
    with pytest.raises(InsufficientFunds) as refused:
        ledger.apply_to_balances({HELD: 5_00}, ledger.payout_post(1, U, 6_00, 0))
    assert refused.value.account == HELD


def test_system_accounts_may_go_below_zero():
    after = ledger.apply_to_balances({}, ledger.payin("FP1", 3, U, 100_00, 15_00))
    assert after[ledger.CLEARING] == -100_00


# --- posting through the in-memory ledger ----------------------------------------------------
def _post(world: World, journal: Journal) -> None:
    def body(uow: UnitOfWork) -> None:
        uow.ledger.post(journal, START)

    world.core.transaction(body)


def test_a_second_post_with_the_same_key_is_already_done_and_moves_nothing():
    world = make_world()
    _post(world, ledger.payin("FP1", 3, U, 100_00, 15_00))
    before = snapshot(world)

    with pytest.raises(AlreadyDone) as done:
        _post(world, ledger.payin("FP1", 3, U, 100_00, 15_00))
    with pytest.raises(AlreadyDone):  # the key decides, not the content
        _post(world, ledger.payin("FP1", 3, U, 200_00, 0))

    assert done.value.key == "payin:FP1"
    assert snapshot(world) == before
    assert world.available(U) == 85_00
    assert world.balance(ledger.FEES) == 15_00
    assert world.balance(ledger.CLEARING) == -100_00
    assert len(world.state.journals) == 1
    assert_books_balanced(world)


def test_a_refused_post_writes_nothing():
    world = make_world()
    _post(world, ledger.payin("FP1", 3, U, 100_00, 15_00))
    before = snapshot(world)

    with pytest.raises(InsufficientFunds):
        _post(world, ledger.payout_hold(1, U, 85_01))

    assert snapshot(world) == before
    assert "payout-hold:1" not in world.state.journals


def test_balances_follow_every_posted_journal():
    world = make_world()
    payin = ledger.payin("FP1", 3, U, 100_00, 15_00)
    for journal in (
        payin,
        ledger.payout_hold(1, U, 80_00),
        ledger.payout_post(1, U, 80_00, 1_00),
        ledger.refund("FP1", 3, U, payin.entries),
        ledger.adjustment("a", U, 80_00, "make good"),
    ):
        _post(world, journal)
    assert world.available(U) == 0
    assert world.held(U) == 0
    assert world.balance(ledger.PAYOUTS_SENT) == 79_00
    assert world.balance(ledger.FEES) == 1_00
    assert world.balance(ledger.ADJUSTMENTS) == -80_00
    assert_books_balanced(world)
    assert [s.seq for s in world.state.journals.values()] == [1, 2, 3, 4, 5]
