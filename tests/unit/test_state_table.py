"""Every cell of the design's 8x8 state table, by Order.decide and through apply_provider_report.

The expected moves are written out below from docs/design.md ("Order states and what each
move does"), not derived from flamepay.order.STATE_TABLE, so a drift in either shows up.
"""

from __future__ import annotations

import pytest

from flamepay import ledger
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.confirm_by_query import confirm_by_query
from flamepay.open_order import open_recharge_order
from flamepay.order import Move, Order, OrderState, ReviewFlag
from flamepay.records import ReviewKind
from flamepay.report import ProviderReport, ReportSource
from tests.helpers.core_checks import (
    USER,
    admin_rows,
    assert_books_balanced,
    entries,
    journal_keys,
    open_order,
    report_state,
    reviews,
    stored_order,
    user_rows,
)
from tests.helpers.support import START, World, make_world

AMOUNT = 100_30  # 15% of it is 15.045: round half up gives 15.05 (half even would give 15.04)
FEE = 15_05
CREDIT = AMOUNT - FEE

# The design's table, cell by cell as it is printed: rows are the state the order is in,
# columns the state reported. "0->1 moves; else no-op" is written as its two cells.
DESIGN_TABLE: dict[tuple[int, ...], dict[tuple[int, ...], str]] = {
    (0,): {
        (0,): "no-op",
        (1,): "move",
        (2,): "credit",
        (3, 4, 6): "move",
        (5,): "no-op + alert",
        (7,): "no-op + alert",
    },
    (1,): {
        (0, 1): "no-op",
        (2,): "credit",
        (3, 4, 6): "move",
        (5,): "no-op + alert",
        (7,): "no-op + alert",
    },
    (2,): {
        (0, 1): "no-op",
        (2,): "no-op",
        (3, 4, 6): "no-op + alert",
        (5,): "reverse credit",
        (7,): "dispute",
    },
    (3, 4, 6): {
        (0, 1): "no-op",
        (2,): "credit (late success) + alert",
        (3, 4, 6): "no-op (stay)",
        (5,): "no-op + alert",
        (7,): "no-op + alert",
    },
    (5,): {
        (0, 1): "no-op",
        (2,): "no-op + alert",
        (3, 4, 6): "no-op",
        (5,): "no-op",
        (7,): "no-op",
    },
    (7,): {
        (0, 1): "no-op",
        (2,): "release dispute",
        (3, 4, 6): "no-op + alert",
        (5,): "reverse credit, release",
        (7,): "no-op",
    },
}

# What each written cell means: the core's Move, and its effects as the design describes them.
#   state: "stay", "reported" or a fixed state; journal: which journal the move writes;
#   alert: whether the admins get an outbox row; user: the user's outbox row kind, if any.
MEANING: dict[str, dict[str, object]] = {
    "no-op": dict(move=Move.NOOP, state="stay", journal=None, alert=False, user=None),
    "no-op (stay)": dict(move=Move.NOOP, state="stay", journal=None, alert=False, user=None),
    "move": dict(move=Move.MOVE, state="reported", journal=None, alert=False, user=None),
    "credit": dict(
        move=Move.CREDIT,
        state=OrderState.SUCCESS,
        journal="payin",
        alert=False,
        user="order_credited",
    ),
    "credit (late success) + alert": dict(
        move=Move.LATE_SUCCESS,
        state=OrderState.SUCCESS,
        journal="payin",
        alert=True,
        user="order_credited",
    ),
    "no-op + alert": dict(move=Move.NOOP_ALERT, state="stay", journal=None, alert=True, user=None),
    "reverse credit": dict(
        move=Move.REVERSE,
        state=OrderState.REFUNDED,
        journal="refund",
        alert=True,
        user="credit_reversed",
    ),
    "dispute": dict(
        move=Move.DISPUTE, state=OrderState.DISPUTED, journal=None, alert=True, user=None
    ),
    # The design says a release unblocks payouts; it names no alert for it but none against
    # one either. The core tells the admins, which is pinned here.
    "release dispute": dict(
        move=Move.RELEASE, state=OrderState.SUCCESS, journal=None, alert=True, user=None
    ),
    "reverse credit, release": dict(
        move=Move.REVERSE_RELEASE,
        state=OrderState.REFUNDED,
        journal="refund",
        alert=True,
        user="credit_reversed",
    ),
}


def _cells() -> list[tuple[OrderState, OrderState, str]]:
    cells = []
    for froms, row in DESIGN_TABLE.items():
        for reporteds, written in row.items():
            for from_state in froms:
                for reported in reporteds:
                    cells.append((OrderState(from_state), OrderState(reported), written))
    return cells


CELLS = _cells()
CELL_IDS = [f"{int(f)}<-{int(r)}" for f, r, _ in CELLS]


def test_the_written_table_has_every_cell_once():
    pairs = [(f, r) for f, r, _ in CELLS]
    assert len(pairs) == 64
    assert set(pairs) == {(f, r) for f in OrderState for r in OrderState}


def _expected_state(from_state: OrderState, reported: OrderState, written: str) -> OrderState:
    state = MEANING[written]["state"]
    if state == "stay":
        return from_state
    if state == "reported":
        return reported
    return state


def _order(state: OrderState) -> Order:
    return Order(
        id=1,
        mch_order_no="FP00000001",
        user_id=USER,
        package_id=1,
        way_code="ALI_QR",
        amount=AMOUNT,
        currency="USD",
        fee_bp=1500,
        created_at=START,
        expires_at=START,
        state=state,
    )


@pytest.mark.parametrize(("from_state", "reported", "written"), CELLS, ids=CELL_IDS)
def test_decide(from_state, reported, written):
    order = _order(from_state)
    decision = order.decide(reported)
    assert decision.move is MEANING[written]["move"]
    assert decision.from_state is from_state
    assert decision.reported is reported
    assert decision.to_state is _expected_state(from_state, reported, written)
    assert order.state is from_state  # deciding changes nothing


# --- putting a real order into each state through real reports --------------------------
def order_in(world: World, state: OrderState) -> str:
    """An order of AMOUNT in `state`, reached the way production reaches it."""
    if state is OrderState.CREATED:
        # The create call timed out (the gateway stored it) and so did the query: it stays 0.
        world.provider.create_timeout_after_storing = True
        world.provider.query_timeouts = 1
        opened = open_recharge_order(world.core, USER, world.add_package(AMOUNT))
        number = opened.order.mch_order_no
    else:
        number = open_order(world, AMOUNT)
        if state is not OrderState.PAYING:
            first = (
                OrderState.SUCCESS if state in (OrderState.REFUNDED, OrderState.DISPUTED) else state
            )
            report_state(world, number, first)
            if state is not first:
                report_state(world, number, state)
    assert stored_order(world, number).state is state
    return number


SOURCES = [ReportSource.NOTIFY, ReportSource.QUERY, ReportSource.RECONCILE]


@pytest.mark.parametrize("source", SOURCES, ids=[s.value for s in SOURCES])
@pytest.mark.parametrize(("from_state", "reported", "written"), CELLS, ids=CELL_IDS)
def test_cell_through_apply_provider_report(from_state, reported, written, source):
    meaning = MEANING[written]
    world = make_world(fee_bp=1500)
    number = order_in(world, from_state)
    # A later change of the global fee must not touch an order opened before it.
    world.set_policy(fee_bp=500)
    journals_before = {k: entries(world, k) for k in journal_keys(world)}
    available_before = world.available(USER)
    admin_before = len(admin_rows(world))
    user_before = len(user_rows(world))
    audit_before = len(world.state.audit)

    if source is ReportSource.NOTIFY and meaning["move"].lifts_block:
        # A notify may be a replay: alone it releases nothing and asks for the gateway's
        # answer, which the notify path fetches (confirm_by_query) and which makes the move.
        waiting = report_state(world, number, reported, source)
        assert waiting.outcome is Outcome.NEEDS_QUERY
        assert stored_order(world, number).state is from_state
        assert journal_keys(world) == set(journals_before)
        assert world.state.audit[-1].action == "release_needs_query"
        audit_before = len(world.state.audit)
        result, source = confirm_by_query(world.core, number), ReportSource.QUERY
    else:
        result = report_state(world, number, reported, source)

    expected_state = _expected_state(from_state, reported, written)
    order = stored_order(world, number)
    assert order.state is expected_state
    assert order.review is ReviewFlag.NONE
    assert result.state is expected_state
    assert result.decision is not None and result.decision.move is meaning["move"]
    changes = meaning["move"] not in (Move.NOOP, Move.NOOP_ALERT)
    assert result.outcome is (Outcome.APPLIED if changes else Outcome.UNCHANGED)

    # Money: exactly the journal the cell writes, and nothing else touched.
    new_keys = journal_keys(world) - set(journals_before)
    for key, before in journals_before.items():
        assert entries(world, key) == before
    payin_key, refund_key = f"payin:{number}", f"refund:{number}"
    if meaning["journal"] == "payin":
        assert new_keys == {payin_key}
        assert entries(world, payin_key) == {
            ledger.CLEARING: -AMOUNT,
            ledger.available(USER): CREDIT,
            ledger.FEES: FEE,
        }
        assert world.available(USER) == available_before + CREDIT
    elif meaning["journal"] == "refund":
        assert new_keys == {refund_key}
        payin = entries(world, payin_key)
        assert entries(world, refund_key) == {account: -x for account, x in payin.items()}
        assert world.available(USER) == available_before - CREDIT
    else:
        assert new_keys == set()
        assert world.available(USER) == available_before
    # Whatever happened before and now: a pay-in exists exactly when the order was ever paid,
    # a refund exactly when it is refunded.
    ever_paid = from_state in (2, 5, 7) or meaning["journal"] == "payin"
    assert (payin_key in journal_keys(world)) is ever_paid
    assert (refund_key in journal_keys(world)) is (order.state is OrderState.REFUNDED)
    assert_books_balanced(world)

    # Notifications: one admin alert when the cell says so; the user hears about money only.
    new_admin = admin_rows(world)[admin_before:]
    assert len(new_admin) == (1 if meaning["alert"] else 0)
    assert all(number in m.text and m.kind.startswith("alert_") for m in new_admin)
    new_user = user_rows(world)[user_before:]
    assert [m.kind for m in new_user] == ([meaning["user"]] if meaning["user"] else [])
    if meaning["user"] == "order_credited":
        assert "85.25 USD credited" in new_user[0].text
    if meaning["user"] == "credit_reversed":
        assert "85.25 USD taken back" in new_user[0].text

    # Alerts an admin acknowledges; never a mismatch review for a matching report.
    assert reviews(world, ReviewKind.MISMATCH) == []
    if meaning["move"] in (Move.LATE_SUCCESS, Move.DISPUTE):
        assert any(r.order_id == order.id for r in reviews(world, ReviewKind.ALERT))

    # Audit: the move, with its source.
    new_audit = world.state.audit[audit_before:]
    assert [(a.actor, a.action) for a in new_audit] == [
        (source.value, f"report_{meaning['move'].value}")
    ]
    assert new_audit[0].target == number
    assert new_audit[0].details["from_state"] == int(from_state)
    assert new_audit[0].details["to_state"] == int(expected_state)


# --- the create response -------------------------------------------------------------------
def _create_response(world: World, number: str, state: OrderState) -> ProviderReport:
    pay_no = world.provider.orders[number].pay_order_no
    return ProviderReport(
        number,
        state,
        provider_order_no=pay_no,
        cashier_url=f"https://pay.example.test/cashier/{pay_no}",
    )


@pytest.mark.parametrize(
    "from_state",
    [
        OrderState.CREATED,
        OrderState.PAYING,
        OrderState.FAILED,
        OrderState.CANCELLED,
        OrderState.CLOSED,
    ],
    ids=lambda s: str(int(s)),
)
def test_a_create_response_saying_2_never_credits(from_state):
    world = make_world()
    number = order_in(world, from_state)
    admin_before = len(admin_rows(world))
    user_before = len(user_rows(world))

    result = apply_provider_report(
        world.core, _create_response(world, number, OrderState.SUCCESS), ReportSource.CREATE
    )

    assert result.outcome is Outcome.NEEDS_QUERY
    assert stored_order(world, number).state is from_state
    assert f"payin:{number}" not in journal_keys(world)
    assert world.available(USER) == 0
    assert len(admin_rows(world)) == admin_before
    assert len(user_rows(world)) == user_before
    assert world.state.audit[-1].action == "create_reported_success"
    assert world.state.audit[-1].actor == "create"


@pytest.mark.parametrize(
    ("from_state", "reported"),
    [(OrderState.CREATED, OrderState.PAYING)]
    + [(f, r) for f in (OrderState.CREATED, OrderState.PAYING) for r in (3, 4, 6)],
    ids=lambda s: str(int(s)),
)
def test_a_create_response_may_move_0_to_1_or_to_3_4_6(from_state, reported):
    world = make_world()
    number = order_in(world, from_state)
    result = apply_provider_report(
        world.core, _create_response(world, number, reported), ReportSource.CREATE
    )
    assert result.outcome is Outcome.APPLIED
    assert stored_order(world, number).state is OrderState(reported)
    assert journal_keys(world) == set()


@pytest.mark.parametrize(
    ("from_state", "reported"),
    [
        (OrderState.SUCCESS, OrderState.REFUNDED),
        (OrderState.SUCCESS, OrderState.DISPUTED),
        (OrderState.DISPUTED, OrderState.SUCCESS),
        (OrderState.DISPUTED, OrderState.REFUNDED),
    ],
    ids=["2<-5", "2<-7", "7<-2", "7<-5"],
)
@pytest.mark.parametrize("source", [ReportSource.CREATE, ReportSource.CLOSE])
def test_a_report_matched_by_number_only_moves_no_paid_order(from_state, reported, source):
    # "A create response is matched by order number only; it may move 0->1 or to 3/4/6 and
    # never credits": no reversal, dispute or release either (found in d72889c, now fixed).
    world = make_world()
    number = order_in(world, from_state)
    admin_before = len(admin_rows(world))
    user_before = len(user_rows(world))

    result = apply_provider_report(world.core, _create_response(world, number, reported), source)

    assert result.outcome in (Outcome.UNCHANGED, Outcome.NEEDS_QUERY)
    assert stored_order(world, number).state is from_state
    assert journal_keys(world) == {f"payin:{number}"}
    assert world.available(USER) == CREDIT
    assert len(admin_rows(world)) == admin_before
    assert len(user_rows(world)) == user_before
    assert world.state.audit[-1].actor == source.value
