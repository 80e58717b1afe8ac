"""One contract suite over every storage adapter: the same functions, the same expectations.

The in-memory adapter is what the core's tests run on; these tests hold the SQL adapters to
the same behaviour: round trips, unique keys, idempotent journals, keyset paging, locking and
the refusals.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from flamepay import ledger
from flamepay.access_code import AccessCode
from flamepay.catalogue import Gateway, Package
from flamepay.errors import AlreadyDone, InsufficientFunds
from flamepay.ledger import Entry, JournalKind
from flamepay.order import Order, OrderState, ReviewFlag
from flamepay.payout import Network, Payout, PayoutStatus
from flamepay.records import (
    Audience,
    AuditEntry,
    CallbackEvent,
    OutboxMessage,
    Review,
    ReviewKind,
    ReviewStatus,
)
from flamepay.user import User

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def in_tx(factory, fn):
    with factory() as uow:
        result = fn(uow)
        uow.commit()
        return result


def read(factory, fn):
    with factory() as uow:
        return fn(uow)


def make_order(number: str = "FP1", user_id: int = 7, amount: int = 10000, **kw) -> Order:
    fields = dict(
        id=0,
        mch_order_no=number,
        user_id=user_id,
        package_id=1,
        way_code="ALI_QR",
        amount=amount,
        currency="USD",
        fee_bp=1500,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=30),
        updated_at=NOW,
    )
    fields.update(kw)
    return Order(**fields)


def add_order(factory, number: str = "FP1", **kw) -> Order:
    return in_tx(factory, lambda uow: uow.orders.add(make_order(number, **kw)))


# --- users and codes ---------------------------------------------------------------------------
def test_user_round_trip_and_unique_id(uow_factory) -> None:
    user = User(42, "neo", "Thomas A.", first_seen=NOW)
    in_tx(uow_factory, lambda uow: uow.users.add(user))
    with pytest.raises(AlreadyDone):
        in_tx(uow_factory, lambda uow: uow.users.add(User(42, "x", "y", first_seen=NOW)))

    def activate(uow):
        stored = uow.users.get_for_update(42)
        stored.activated_at = NOW
        stored.activated_with = "3"
        uow.users.save(stored)

    in_tx(uow_factory, activate)
    got = read(uow_factory, lambda uow: uow.users.get(42))
    assert (got.username, got.name, got.first_seen, got.activated_at) == (
        "neo",
        "Thomas A.",
        NOW,
        NOW,
    )
    assert got.activated and not got.banned
    assert read(uow_factory, lambda uow: uow.users.get(43)) is None
    counts = read(uow_factory, lambda uow: uow.users.counts())
    assert (counts.total, counts.active, counts.banned) == (1, 1, 0)


def test_code_redemption_is_conditional(uow_factory) -> None:
    code = AccessCode(0, "ABCDEFGHJK", 2, 1, NOW, expires_at=NOW + timedelta(days=1))
    stored = in_tx(uow_factory, lambda uow: uow.access_codes.add(code))
    assert stored.id > 0
    with pytest.raises(AlreadyDone):
        in_tx(uow_factory, lambda uow: uow.access_codes.add(AccessCode(0, "ABCDEFGHJK", 1, 1, NOW)))
    first = in_tx(uow_factory, lambda uow: uow.access_codes.redeem("ABCDEFGHJK", NOW))
    second = in_tx(uow_factory, lambda uow: uow.access_codes.redeem("ABCDEFGHJK", NOW))
    third = in_tx(uow_factory, lambda uow: uow.access_codes.redeem("ABCDEFGHJK", NOW))
    assert (first.uses, second.uses, third) == (1, 2, None)
    assert in_tx(uow_factory, lambda uow: uow.access_codes.redeem("abcdefghjk", NOW)) is None
    later = NOW + timedelta(days=2)
    in_tx(
        uow_factory,
        lambda uow: uow.access_codes.add(AccessCode(0, "EXPIRING01", 5, 1, NOW, expires_at=NOW)),
    )
    assert in_tx(uow_factory, lambda uow: uow.access_codes.redeem("EXPIRING01", later)) is None
    recent = read(uow_factory, lambda uow: uow.access_codes.recent(10))
    assert [c.code for c in recent] == ["EXPIRING01", "ABCDEFGHJK"]
    assert recent[1].uses == 2 and recent[1].last_used_at == NOW


def test_failed_attempts_are_counted_per_user_in_a_window(uow_factory) -> None:
    for minutes in (0, 5, 9):
        in_tx(
            uow_factory,
            lambda uow, m=minutes: uow.access_codes.record_failed_attempt(
                5, NOW + timedelta(minutes=m)
            ),
        )
    in_tx(uow_factory, lambda uow: uow.access_codes.record_failed_attempt(6, NOW))
    count = read(
        uow_factory,
        lambda uow: uow.access_codes.count_failed_attempts(5, NOW + timedelta(minutes=1)),
    )
    assert count == 2


# --- catalogue -----------------------------------------------------------------------------------
def test_catalogue_round_trip(uow_factory) -> None:
    in_tx(uow_factory, lambda uow: uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay")))
    in_tx(uow_factory, lambda uow: uow.catalogue.save_gateway(Gateway("WX", "WeChat", False)))
    in_tx(uow_factory, lambda uow: uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay QR")))
    gateways = read(uow_factory, lambda uow: uow.catalogue.gateways())
    assert [(g.way_code, g.title, g.enabled) for g in gateways] == [
        ("ALI_QR", "Alipay QR", True),
        ("WX", "WeChat", False),
    ]
    big = in_tx(
        uow_factory,
        lambda uow: uow.catalogue.add_package(Package(0, "ALI_QR", "Big", 50000, sort_order=2)),
    )
    small = in_tx(
        uow_factory,
        lambda uow: uow.catalogue.add_package(Package(0, "ALI_QR", "Small", 1000, sort_order=1)),
    )
    in_tx(uow_factory, lambda uow: uow.catalogue.add_package(Package(0, "WX", "W", 700)))
    listed = read(uow_factory, lambda uow: uow.catalogue.packages("ALI_QR"))
    assert [p.id for p in listed] == [small.id, big.id]
    big.enabled = False
    in_tx(uow_factory, lambda uow: uow.catalogue.save_package(big))
    again = read(uow_factory, lambda uow: uow.catalogue.package(big.id))
    assert (again.label, again.amount, again.enabled) == ("Big", 50000, False)
    assert len(read(uow_factory, lambda uow: uow.catalogue.packages())) == 3
    assert read(uow_factory, lambda uow: uow.catalogue.gateway("NOPE")) is None


# --- orders --------------------------------------------------------------------------------------
def test_order_round_trip_by_either_number(uow_factory) -> None:
    order = add_order(uow_factory)
    assert order.id > 0

    def paying(uow):
        stored = uow.orders.get_for_update("FP1")
        stored.state = OrderState.PAYING
        stored.provider_order_no = "P77"
        stored.cashier_url = "https://pay.example/c/P77"
        uow.orders.save(stored)

    in_tx(uow_factory, paying)
    by_mch = read(uow_factory, lambda uow: uow.orders.get_by_number("FP1"))
    by_provider = read(uow_factory, lambda uow: uow.orders.get_by_number("P77"))
    assert by_mch.id == by_provider.id == order.id
    assert (by_mch.state, by_mch.amount, by_mch.fee_bp, by_mch.expires_at) == (
        OrderState.PAYING,
        10000,
        1500,
        NOW + timedelta(minutes=30),
    )
    assert by_mch.cashier_url == "https://pay.example/c/P77"
    assert read(uow_factory, lambda uow: uow.orders.get_for_update("P77")) is None


def test_order_numbers_and_provider_numbers_are_unique(uow_factory) -> None:
    add_order(uow_factory, "FP1")
    add_order(uow_factory, "FP2")
    with pytest.raises(AlreadyDone):
        add_order(uow_factory, "FP1")

    def claim(number):
        def body(uow):
            stored = uow.orders.get_for_update(number)
            stored.provider_order_no = "SAME"
            uow.orders.save(stored)

        return body

    in_tx(uow_factory, claim("FP1"))
    with pytest.raises(AlreadyDone):
        in_tx(uow_factory, claim("FP2"))


def test_keys_are_exact_bytes(uow_factory) -> None:
    # 'ab', 'AB' and 'ab ' are three keys: no case folding, no trailing-space padding.
    for number in ("ab", "AB", "ab "):
        add_order(uow_factory, number)
    assert read(uow_factory, lambda uow: uow.orders.get_by_number("ab ")).mch_order_no == "ab "
    for key in ("ab", "AB", "ab "):
        journal = ledger.Journal(
            key, JournalKind.ADJUST, (Entry(ledger.ADJUSTMENTS, -1), Entry(ledger.available(1), 1))
        )
        in_tx(uow_factory, lambda uow, j=journal: uow.ledger.post(j, NOW))
    assert read(uow_factory, lambda uow: uow.ledger.balance(ledger.available(1))) == 3
    for key in ("ab", "AB", "ab "):
        review = Review(None, 1, ReviewKind.ALERT, "r", NOW, key=key)
        assert in_tx(uow_factory, lambda uow, r=review: uow.reviews.open(r)) is True


def test_open_disputed_expiry_and_paging(uow_factory) -> None:
    for i in range(1, 8):
        add_order(uow_factory, f"FP{i}", expires_at=NOW + timedelta(minutes=i))

    def set_state(number, state, review=ReviewFlag.NONE):
        def body(uow):
            stored = uow.orders.get_for_update(number)
            stored.state, stored.review = state, review
            uow.orders.save(stored)

        in_tx(uow_factory, body)

    set_state("FP2", OrderState.PAYING)
    set_state("FP3", OrderState.SUCCESS)
    set_state("FP4", OrderState.CREATED, ReviewFlag.PENDING)
    add_order(uow_factory, "OTHER", user_id=8)
    open_numbers = read(
        uow_factory, lambda uow: [o.mch_order_no for o in uow.orders.open_for_user(7)]
    )
    assert sorted(open_numbers) == ["FP1", "FP2", "FP5", "FP6", "FP7"]
    assert not read(uow_factory, lambda uow: uow.orders.has_disputed(7))
    set_state("FP3", OrderState.DISPUTED)
    assert read(uow_factory, lambda uow: uow.orders.has_disputed(7))
    assert not read(uow_factory, lambda uow: uow.orders.has_disputed(8))
    due = read(uow_factory, lambda uow: uow.orders.due_for_expiry(NOW + timedelta(minutes=5), 3))
    assert [o.mch_order_no for o in due] == ["FP1", "FP2", "FP5"]  # FP3 paid, FP4 under review
    first = read(uow_factory, lambda uow: uow.orders.list_for_user(7, None, 3))
    second = read(uow_factory, lambda uow: uow.orders.list_for_user(7, first[-1].id, 3))
    third = read(uow_factory, lambda uow: uow.orders.list_for_user(7, second[-1].id, 3))
    numbers = [o.mch_order_no for o in first + second + third]
    assert numbers == [f"FP{i}" for i in range(7, 0, -1)]


def test_a_resolved_review_puts_the_order_back_under_the_sweeps(uow_factory) -> None:
    """Issue 15 fault 3: the SQL adapters kept an order whose review was resolved out of
    the reconciler's sweeps for good (`review = 'none'`), so a later refund, dispute or late
    success was never asked about. Only a pending review keeps an order out."""
    add_order(uow_factory, "PAID", state=OrderState.SUCCESS, review=ReviewFlag.CREDITED)
    add_order(uow_factory, "FAILED", state=OrderState.FAILED, review=ReviewFlag.REJECTED)
    add_order(uow_factory, "KEPT", state=OrderState.SUCCESS, review=ReviewFlag.REJECTED)
    add_order(uow_factory, "WAITING", state=OrderState.FAILED, review=ReviewFlag.PENDING)
    add_order(uow_factory, "PLAIN", state=OrderState.FAILED)

    def due(states):
        since, not_since = NOW - timedelta(days=1), NOW + timedelta(seconds=1)
        found = read(
            uow_factory,
            lambda uow: uow.orders.due_for_reconcile(states, None, since, not_since, 10),
        )
        return sorted(o.mch_order_no for o in found)

    assert due((OrderState.SUCCESS,)) == ["KEPT", "PAID"]
    assert due((OrderState.FAILED,)) == ["FAILED", "PLAIN"]


def test_alert_claims_count_what_they_hold_back(uow_factory) -> None:
    """Issue 15 fault 7: one alert per key and interval; the repeats held back are counted
    and handed to the next one sent, then the count starts again."""

    def claim(at):
        return in_tx(uow_factory, lambda uow: uow.alerts.claim("order:1:refund", at, 60))

    first = claim(NOW)
    held = [claim(NOW + timedelta(seconds=i)) for i in range(1, 4)]
    later = claim(NOW + timedelta(seconds=61))
    again = claim(NOW + timedelta(seconds=62))
    other = in_tx(uow_factory, lambda uow: uow.alerts.claim("order:2:refund", NOW, 60))
    assert (first.sent, first.repeats) == (True, 0)
    assert [(c.sent, c.repeats) for c in held] == [(False, 1), (False, 2), (False, 3)]
    assert (later.sent, later.repeats) == (True, 3)
    assert (again.sent, again.repeats) == (False, 1)
    assert other.sent


def test_search_by_user_id_refuses_what_is_no_user_id(uow_factory) -> None:
    """Issue 15 fault 13: '²' passed the search's isdigit() and then int() raised; 19 nines
    passed its length check and overflowed SQLite. Neither can name a user: no match."""
    add_order(uow_factory, "FP1", user_id=7)
    for term in ("²", "7²", "9" * 19, "٧", "0"):
        assert read(uow_factory, lambda uow, t=term: uow.orders.search(t, 10)) == []
    found = read(uow_factory, lambda uow: uow.orders.search("7", 10))
    assert [o.mch_order_no for o in found] == ["FP1"]


# --- ledger --------------------------------------------------------------------------------------
def test_journals_are_idempotent_and_balances_follow_entries(uow_factory) -> None:
    payin = ledger.payin("FP1", 1, 7, 10000, 1500)
    in_tx(uow_factory, lambda uow: uow.ledger.post(payin, NOW))
    with pytest.raises(AlreadyDone):
        in_tx(uow_factory, lambda uow: uow.ledger.post(payin, NOW))
    balances = read(
        uow_factory,
        lambda uow: {
            a: uow.ledger.balance(a) for a in (ledger.available(7), ledger.CLEARING, ledger.FEES)
        },
    )
    assert balances == {ledger.available(7): 8500, ledger.CLEARING: -10000, ledger.FEES: 1500}
    entries = read(uow_factory, lambda uow: uow.ledger.entries_of("payin:FP1"))
    assert sorted(entries, key=lambda e: e.account) == sorted(
        payin.entries, key=lambda e: e.account
    )
    assert read(uow_factory, lambda uow: uow.ledger.entries_of("payin:FP2")) is None


def test_floors_refuse_and_write_nothing(uow_factory) -> None:
    in_tx(uow_factory, lambda uow: uow.ledger.post(ledger.payin("FP1", 1, 7, 1000, 0), NOW))
    with pytest.raises(InsufficientFunds), uow_factory() as uow:
        uow.ledger.post(ledger.payout_hold(1, 7, 1001), NOW)
        uow.commit()
    assert read(uow_factory, lambda uow: uow.ledger.balance(ledger.available(7))) == 1000
    assert read(uow_factory, lambda uow: uow.ledger.entries_of("payout-hold:1")) is None
    in_tx(uow_factory, lambda uow: uow.ledger.post(ledger.payout_hold(2, 7, 1000), NOW))
    assert read(uow_factory, lambda uow: uow.ledger.balance(ledger.held(7))) == 1000
    # A refund reversal may take available below zero; nothing else may.
    stored = read(uow_factory, lambda uow: uow.ledger.entries_of("payin:FP1"))
    in_tx(uow_factory, lambda uow: uow.ledger.post(ledger.refund("FP1", 1, 7, stored), NOW))
    assert read(uow_factory, lambda uow: uow.ledger.balance(ledger.available(7))) == -1000


def test_history_totals_and_liability(uow_factory) -> None:
    for i in range(1, 6):
        journal = ledger.payin(f"FP{i}", i, 7, 1000 * i, 100 * i)
        at = NOW + timedelta(seconds=i)
        in_tx(uow_factory, lambda uow, j=journal, t=at: uow.ledger.post(j, t))
    in_tx(uow_factory, lambda uow: uow.ledger.post(ledger.payout_hold(1, 7, 1000), NOW))
    in_tx(uow_factory, lambda uow: uow.ledger.post(ledger.payin("X", 9, 8, 500, 0), NOW))
    accounts = (ledger.available(7), ledger.held(7))
    page1 = read(uow_factory, lambda uow: uow.ledger.history(accounts, None, 3))
    page2 = read(uow_factory, lambda uow: uow.ledger.history(accounts, page1[-1].id, 3))
    page3 = read(uow_factory, lambda uow: uow.ledger.history(accounts, page2[-1].id, 3))
    lines = page1 + page2 + page3
    assert [line.id for line in lines] == sorted((line.id for line in lines), reverse=True)
    assert len(lines) == 7 and len(page3) == 1
    assert lines[0].kind is JournalKind.PAYOUT_HOLD
    assert {line.account for line in lines} == set(accounts)
    assert lines[-1].journal_key == "payin:FP1" and lines[-1].amount == 900
    credited = read(
        uow_factory,
        lambda uow: uow.ledger.account_total(
            ledger.available(7), (JournalKind.PAYIN, JournalKind.REFUND)
        ),
    )
    assert credited == 900 + 1800 + 2700 + 3600 + 4500
    # Kept beside the balance, in the same transaction as the entries.
    assert read(uow_factory, lambda uow: uow.ledger.credited_total(7)) == credited
    assert read(uow_factory, lambda uow: uow.ledger.credited_total(8)) == 500
    totals = read(uow_factory, lambda uow: uow.ledger.kind_totals(JournalKind.PAYIN))
    assert totals.count == 6
    assert totals.of(ledger.CLEARING) == -15500
    assert totals.of(ledger.FEES) == 1500
    assert totals.of("user:available") == 14000
    assert read(uow_factory, lambda uow: uow.ledger.user_liability()) == 14000


# --- payouts, reviews, outbox, audit -----------------------------------------------------------
def test_payouts_round_trip_and_txid_is_unique(uow_factory) -> None:
    def request(user, amount):
        return in_tx(
            uow_factory,
            lambda uow: uow.payouts.add(Payout(0, user, amount, Network.TRC20, "TAddr", 100, NOW)),
        )

    p1, p2, p3 = request(7, 1000), request(7, 2000), request(8, 3000)

    def resolve(payout_id, txid):
        def body(uow):
            payout = uow.payouts.get_for_update(payout_id)
            payout.approve(1, NOW, txid)
            uow.payouts.save(payout)

        return body

    in_tx(uow_factory, resolve(p1.id, "tx-1"))
    with pytest.raises(AlreadyDone):
        in_tx(uow_factory, resolve(p2.id, "tx-1"))
    got = read(uow_factory, lambda uow: uow.payouts.get(p1.id))
    assert (got.status, got.txid, got.resolved_by, got.network_fee, got.to_receive) == (
        PayoutStatus.APPROVED,
        "tx-1",
        1,
        100,
        900,
    )
    assert [p.id for p in read(uow_factory, lambda uow: uow.payouts.pending())] == [p2.id, p3.id]
    assert [p.id for p in read(uow_factory, lambda uow: uow.payouts.pending(7))] == [p2.id]
    mine = read(uow_factory, lambda uow: uow.payouts.list_for_user(7, None, 10))
    assert [p.id for p in mine] == [p2.id, p1.id]
    totals = read(uow_factory, lambda uow: uow.payouts.totals())
    assert totals[PayoutStatus.PENDING] == (2, 5000)
    assert totals[PayoutStatus.APPROVED] == (1, 1000)
    assert totals[PayoutStatus.REJECTED] == (0, 0)


def test_reviews_open_once(uow_factory) -> None:
    review = Review(
        None,
        5,
        ReviewKind.MISMATCH,
        "amount 1, expected 2",
        NOW,
        key="mismatch:5",
        report={"amount": 1, "currency": "usd"},
    )
    assert in_tx(uow_factory, lambda uow: uow.reviews.open(review)) is True
    assert in_tx(uow_factory, lambda uow: uow.reviews.open(review)) is False
    pending = read(uow_factory, lambda uow: uow.reviews.pending())
    assert len(pending) == 1 and pending[0].report == {"amount": 1, "currency": "usd"}

    def resolve(uow):
        stored = uow.reviews.get_for_update(pending[0].id)
        stored.status, stored.resolved_by, stored.resolved_at = ReviewStatus.REJECTED, 1, NOW
        uow.reviews.save(stored)

    in_tx(uow_factory, resolve)
    assert read(uow_factory, lambda uow: uow.reviews.pending()) == []
    stored = read(uow_factory, lambda uow: uow.reviews.for_order(5))
    assert [(r.status, r.resolved_by) for r in stored] == [(ReviewStatus.REJECTED, 1)]


def test_outbox_pending_until_marked_sent(uow_factory) -> None:
    for n in range(3):
        message = OutboxMessage(Audience.USER, "k", f"text {n}", NOW, user_id=7, ref=f"r{n}")
        in_tx(uow_factory, lambda uow, m=message: uow.outbox.add(m))
    pending = read(uow_factory, lambda uow: uow.outbox.pending(10))
    assert [m.text for m in pending] == ["text 0", "text 1", "text 2"]
    in_tx(uow_factory, lambda uow: uow.outbox.mark_sent(pending[1].id, NOW))
    assert [m.text for m in read(uow_factory, lambda uow: uow.outbox.pending(10))] == [
        "text 0",
        "text 2",
    ]
    assert len(read(uow_factory, lambda uow: uow.outbox.pending(1))) == 1


def test_audit_and_callback_events_accept_unicode(uow_factory) -> None:
    in_tx(
        uow_factory,
        lambda uow: uow.audit.record(
            AuditEntry("admin:1", "x", "user:2", {"note": "名前 ✓", "n": 5}, NOW)
        ),
    )
    in_tx(
        uow_factory,
        lambda uow: uow.callback_events.record(
            CallbackEvent("FP1", "applied", "127.0.0.1", {"state": "2"}, NOW)
        ),
    )


# --- transactions --------------------------------------------------------------------------------
def test_leaving_without_commit_discards_everything(uow_factory) -> None:
    with uow_factory() as uow:
        uow.orders.add(make_order("GONE"))
        uow.ledger.post(ledger.payin("GONE", 1, 7, 100, 0), NOW)
        uow.users.add(User(9))
    assert read(uow_factory, lambda uow: uow.orders.get_by_number("GONE")) is None
    assert read(uow_factory, lambda uow: uow.ledger.entries_of("payin:GONE")) is None
    assert read(uow_factory, lambda uow: uow.users.get(9)) is None


def test_get_for_update_waits_for_the_holder(uow_factory) -> None:
    add_order(uow_factory, "LOCKED")
    holding = threading.Event()
    seen: list[OrderState] = []

    def holder():
        with uow_factory() as uow:
            order = uow.orders.get_for_update("LOCKED")
            holding.set()
            time.sleep(0.3)
            order.state = OrderState.PAYING
            uow.orders.save(order)
            uow.commit()

    def waiter():
        holding.wait(5)
        with uow_factory() as uow:
            seen.append(uow.orders.get_for_update("LOCKED").state)
            uow.commit()

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # The waiter's locking read came after the holder's commit, so it sees the new state.
    assert seen == [OrderState.PAYING]
