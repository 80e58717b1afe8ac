"""Payouts: request (hold), approve (post), reject (void), and what each refuses."""

from __future__ import annotations

import threading

import pytest

from flamepay import ledger
from flamepay.approve_payout import approve_payout
from flamepay.errors import AlreadyResolved, NotFound, Refused
from flamepay.order import OrderState
from flamepay.payout import Network, PayoutStatus
from flamepay.records import Audience
from flamepay.reject_payout import reject_payout
from flamepay.report import ReportSource
from flamepay.request_payout import request_payout
from tests.helpers.core_checks import (
    ADMIN,
    USER,
    admin_rows,
    assert_books_balanced,
    entries,
    outbox,
    paid_order,
    report_state,
    snapshot,
    user_rows,
)
from tests.helpers.support import World, make_world

ADDRESS = "TXYZabc123"


def _funded(amount: int = 100_00, **policy) -> World:
    """A world whose user has 85% of `amount` available from one paid order."""
    world = make_world(**policy)
    paid_order(world, amount)
    return world


def _request(world: World, amount: int, network: Network = Network.TRC20):
    return request_payout(world.core, USER, amount, network, ADDRESS)


def _audited(world: World, action: str) -> list:
    return [a for a in world.state.audit if a.action == action]


def _refused(world: World, call, error=Refused, match: str | None = None) -> None:
    """`call` is refused, moves nothing, writes no outbox row, and the refusal is audited."""
    before = snapshot(world)
    audit_before = len(world.state.audit)
    with pytest.raises(error, match=match) as refusal:
        call()
    assert snapshot(world) == before
    new_audit = world.state.audit[audit_before:]
    assert len(new_audit) == 1
    assert new_audit[0].action.endswith("_refused")
    assert new_audit[0].details["reason"] == str(refusal.value)


# --- request -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "policy", "match"),
    [
        (9_99, {}, "minimum payout is 10.00 USD"),
        (1000_01, {}, "maximum payout is 1000.00 USD"),
        (15_00, {"payout_fees": {Network.TRC20: 15_00}}, "exceed the USDT TRC20 network fee"),
        (10_00, {"payout_fees": {Network.TRC20: 12_00}}, "exceed the USDT TRC20 network fee"),
        (1200_01, {"payout_max": 0}, "Not enough available: 1200.00 USD"),
    ],
    ids=["below-min", "above-max", "equal-to-fee", "below-fee", "above-available"],
)
def test_a_request_outside_the_rules_is_refused(amount, policy, match):
    world = _funded(1411_77, **policy)  # 1200.00 available after the 15% fee (211.77 rounded)
    assert world.available(USER) == 1200_00

    _refused(world, lambda: _request(world, amount), match=match)

    assert world.held(USER) == 0
    assert world.state.payouts == {}
    assert _audited(world, "payout_request_refused")[0].actor == f"user:{USER}"


@pytest.mark.parametrize(
    ("amount", "policy"),
    [
        (10_00, {}),
        (1000_00, {}),
        (1200_00, {"payout_max": 0}),  # 0 means no maximum
        (15_01, {"payout_fees": {Network.TRC20: 15_00}}),
    ],
    ids=["min", "max", "no-max", "just-above-fee"],
)
def test_a_request_inside_the_rules_holds_the_amount(amount, policy):
    world = _funded(1411_77, **policy)

    payout = _request(world, amount)

    assert world.available(USER) == 1200_00 - amount
    assert world.held(USER) == amount
    assert entries(world, f"payout-hold:{payout.id}") == {
        ledger.available(USER): -amount,
        ledger.held(USER): amount,
    }
    stored = world.state.payouts[payout.id]
    assert stored.status is PayoutStatus.PENDING and stored.amount == amount
    assert [m.kind for m in admin_rows(world)] == ["payout_requested"]
    assert [m.kind for m in user_rows(world)] == ["order_credited"]  # told by the reply
    assert [a.action for a in world.state.audit][-1] == "payout_requested"
    assert_books_balanced(world)


def test_the_whole_available_balance_may_be_paid_out():
    world = _funded()
    _request(world, 85_00)
    assert world.available(USER) == 0
    assert world.held(USER) == 85_00
    _refused(world, lambda: _request(world, 10_00), match="Not enough available: 0.00 USD")


def test_requests_are_refused_while_an_order_is_disputed_and_allowed_after_release():
    world = _funded()
    disputed = paid_order(world, 100_00)
    report_state(world, disputed, OrderState.DISPUTED)
    assert world.available(USER) == 170_00

    _refused(world, lambda: _request(world, 20_00), match="disputed")

    # Released by the gateway's answer to a query (a notify alone never releases: fault 1).
    report_state(world, disputed, OrderState.SUCCESS, ReportSource.RECONCILE)
    _request(world, 20_00)
    assert world.held(USER) == 20_00


def test_a_negative_available_balance_blocks_requests_with_its_own_reason():
    world = _funded()
    payout = _request(world, 85_00)
    approve_payout(world.core, ADMIN, payout.id, "tx-1")
    first = next(iter(world.state.orders.values())).mch_order_no
    report_state(world, first, OrderState.REFUNDED)
    assert world.available(USER) == -85_00
    paid_order(world, 50_00)  # +42.50, still below zero
    assert world.available(USER) == -42_50

    _refused(world, lambda: _request(world, 10_00), match="below zero")


def test_the_network_fee_is_stored_at_request_and_used_at_approval():
    world = _funded(payout_fees={Network.TRC20: 2_00, Network.BEP20: 1_00})

    payout = _request(world, 50_00)
    world.set_policy(payout_fees={Network.TRC20: 5_00})
    approve_payout(world.core, ADMIN, payout.id, "tx-1")

    assert payout.network_fee == 2_00
    assert payout.to_receive == 48_00  # what the user is told they receive
    assert "to send: 48.00 USDT" in admin_rows(world)[0].text
    assert entries(world, f"payout-post:{payout.id}") == {
        ledger.held(USER): -50_00,
        ledger.PAYOUTS_SENT: 48_00,
        ledger.FEES: 2_00,
    }
    assert world.balance(ledger.PAYOUTS_SENT) == 48_00
    assert world.balance(ledger.FEES) == 15_00 + 2_00
    assert "48.00 USDT sent" in user_rows(world)[-1].text


def test_each_network_has_its_own_fee():
    world = _funded(payout_fees={Network.TRC20: 2_00, Network.BEP20: 1_00})
    payout = _request(world, 20_00, Network.BEP20)
    assert world.state.payouts[payout.id].network_fee == 1_00
    assert payout.to_receive == 19_00


# --- approve and reject --------------------------------------------------------------------
def test_approve_moves_held_to_payouts_sent_and_tells_user_and_admins():
    world = _funded()
    payout = _request(world, 60_00)
    rows_before = len(outbox(world))

    approved = approve_payout(world.core, ADMIN, payout.id, "tx-abc", note="sent by hand")

    assert approved.status is PayoutStatus.APPROVED
    stored = world.state.payouts[payout.id]
    assert (stored.status, stored.resolved_by, stored.txid) == (
        PayoutStatus.APPROVED,
        ADMIN,
        "tx-abc",
    )
    assert world.held(USER) == 0
    assert world.available(USER) == 25_00
    assert world.balance(ledger.PAYOUTS_SENT) == 60_00
    assert entries(world, f"payout-post:{payout.id}") == {
        ledger.held(USER): -60_00,
        ledger.PAYOUTS_SENT: 60_00,
    }  # a zero network fee writes no fee leg
    new = outbox(world)[rows_before:]
    assert [(m.audience, m.kind) for m in new] == [
        (Audience.USER, "payout_approved"),
        (Audience.ADMINS, "payout_resolved"),
    ]
    assert new[0].user_id == USER and "tx-abc" in new[0].text
    assert _audited(world, "payout_approved")[0].actor == f"admin:{ADMIN}"
    assert_books_balanced(world)


def test_reject_moves_held_back_to_available_and_tells_the_reason():
    world = _funded()
    payout = _request(world, 60_00)
    rows_before = len(outbox(world))

    reject_payout(world.core, ADMIN, payout.id, "  wrong address  ")

    stored = world.state.payouts[payout.id]
    assert (stored.status, stored.note) == (PayoutStatus.REJECTED, "wrong address")
    assert world.held(USER) == 0
    assert world.available(USER) == 85_00
    assert world.balance(ledger.PAYOUTS_SENT) == 0
    assert entries(world, f"payout-void:{payout.id}") == {
        ledger.held(USER): -60_00,
        ledger.available(USER): 60_00,
    }
    new = outbox(world)[rows_before:]
    assert [(m.audience, m.kind) for m in new] == [
        (Audience.USER, "payout_rejected"),
        (Audience.ADMINS, "payout_resolved"),
    ]
    assert "wrong address" in new[0].text
    assert _audited(world, "payout_rejected")[0].details["reason"] == "wrong address"
    assert_books_balanced(world)


@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_needs_a_reason(reason):
    world = _funded()
    payout = _request(world, 60_00)
    before = snapshot(world)

    with pytest.raises(Refused, match="needs a reason"):
        reject_payout(world.core, ADMIN, payout.id, reason)

    assert snapshot(world) == before
    assert world.state.payouts[payout.id].status is PayoutStatus.PENDING


def test_a_reject_without_reason_is_audited():
    world = _funded()
    payout = _request(world, 60_00)
    with pytest.raises(Refused):
        reject_payout(world.core, ADMIN, payout.id, " ")
    assert _audited(world, "payout_reject_refused")


@pytest.mark.parametrize(
    ("first", "second"),
    [("approve", "approve"), ("reject", "approve"), ("approve", "reject"), ("reject", "reject")],
)
def test_a_payout_is_resolved_once(first, second):
    world = _funded()
    payout = _request(world, 60_00)
    calls = {
        "approve": lambda: approve_payout(world.core, ADMIN + 1, payout.id, None),
        "reject": lambda: reject_payout(world.core, ADMIN + 1, payout.id, "changed my mind"),
    }
    calls[first]()
    status = world.state.payouts[payout.id].status

    _refused(world, calls[second], AlreadyResolved, match=f"already {status.value} by {ADMIN + 1}")

    assert world.state.payouts[payout.id].status is status
    assert world.held(USER) == 0
    assert_books_balanced(world)


def test_approve_and_reject_racing_have_one_winner():
    world = _funded()
    payout = _request(world, 60_00)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def run(name, call):
        barrier.wait()
        try:
            outcomes[name] = call().status
        except AlreadyResolved as refusal:
            outcomes[name] = refusal

    threads = [
        threading.Thread(
            target=run, args=("approve", lambda: approve_payout(world.core, 1, payout.id, "t"))
        ),
        threading.Thread(
            target=run, args=("reject", lambda: reject_payout(world.core, 2, payout.id, "no"))
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refused = [name for name, value in outcomes.items() if isinstance(value, AlreadyResolved)]
    assert len(refused) == 1
    winner = "reject" if refused == ["approve"] else "approve"
    assert world.state.payouts[payout.id].status is outcomes[winner]
    assert world.held(USER) == 0
    posted = {f"payout-post:{payout.id}", f"payout-void:{payout.id}"} & set(world.state.journals)
    assert len(posted) == 1
    assert_books_balanced(world)


def test_a_txid_is_unique_across_payouts():
    world = _funded()
    one = _request(world, 20_00)
    two = _request(world, 20_00)
    approve_payout(world.core, ADMIN, one.id, "tx-1")

    _refused(world, lambda: approve_payout(world.core, ADMIN, two.id, "tx-1"), match="tx-1")

    assert world.state.payouts[two.id].status is PayoutStatus.PENDING
    assert world.held(USER) == 20_00
    assert f"payout-post:{two.id}" not in world.state.journals
    approve_payout(world.core, ADMIN, two.id, "tx-2")
    assert world.held(USER) == 0
    assert world.balance(ledger.PAYOUTS_SENT) == 40_00


def test_payouts_without_txid_do_not_collide():
    world = _funded()
    one = _request(world, 20_00)
    two = _request(world, 20_00)
    approve_payout(world.core, ADMIN, one.id)
    approve_payout(world.core, ADMIN, two.id, "")
    assert world.balance(ledger.PAYOUTS_SENT) == 40_00


def test_approve_is_refused_while_disputed_and_reject_is_always_allowed():
    world = _funded()
    payout = _request(world, 60_00)
    disputed = paid_order(world, 100_00)
    report_state(world, disputed, OrderState.DISPUTED)

    _refused(world, lambda: approve_payout(world.core, ADMIN, payout.id, "tx"), match="disputed")

    reject_payout(world.core, ADMIN, payout.id, "disputed payment")
    assert world.held(USER) == 0
    assert world.state.payouts[payout.id].status is PayoutStatus.REJECTED


def test_approve_is_refused_while_available_is_negative_and_reject_is_allowed():
    world = _funded()
    first = next(iter(world.state.orders.values())).mch_order_no
    payout = _request(world, 50_00)
    report_state(world, first, OrderState.REFUNDED)
    assert world.available(USER) == 35_00 - 85_00

    _refused(world, lambda: approve_payout(world.core, ADMIN, payout.id, "tx"), match="below zero")

    reject_payout(world.core, ADMIN, payout.id, "refunded payment")
    assert world.held(USER) == 0
    assert world.available(USER) == 0
    assert_books_balanced(world)


def test_a_refund_alert_names_the_open_payout():
    world = _funded()
    first = next(iter(world.state.orders.values())).mch_order_no
    payout = _request(world, 50_00)

    report_state(world, first, OrderState.REFUNDED)

    [alert] = [m for m in admin_rows(world) if m.kind == "alert_refund"]
    assert f"#{payout.id} 50.00 USD" in alert.text
    assert "-50.00 USD" in alert.text


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_resolving_a_missing_payout_is_not_found(action):
    world = _funded()
    call = {
        "approve": lambda: approve_payout(world.core, ADMIN, 42, "tx"),
        "reject": lambda: reject_payout(world.core, ADMIN, 42, "no"),
    }[action]
    _refused(world, call, NotFound, match="No payout #42")


def test_an_amount_that_is_not_int_cents_is_a_programming_error():
    world = _funded()
    with pytest.raises(TypeError):
        _request(world, 20.0)
    assert world.state.payouts == {}
