"""run_in_transaction: a body runs whole in one unit of work, re-run whole on a conflict."""

from __future__ import annotations

import pytest

from flamepay import ledger, notices
from flamepay.apply_report import Outcome
from flamepay.errors import RetryableConflict, TransactionConflict
from flamepay.order import OrderState
from flamepay.payout import Network
from flamepay.ports import UnitOfWork
from flamepay.records import AuditEntry
from flamepay.request_payout import request_payout
from flamepay.transaction import DEFAULT_ATTEMPTS, run_in_transaction
from tests.helpers.core_checks import (
    USER,
    assert_books_balanced,
    audit_actions,
    journal_keys,
    open_order,
    outbox,
    paid_order,
    report_state,
    snapshot,
    stored_order,
    user_rows,
)
from tests.helpers.support import START, make_world


def _body_that_writes(attempts: list[int]):
    """A body writing a journal, an outbox row and an audit entry, counting its runs."""

    def body(uow: UnitOfWork) -> str:
        attempts.append(1)
        uow.ledger.post(ledger.adjustment("a1", USER, 5_00, "goodwill"), START)
        uow.outbox.add(notices.to_user(USER, "adjusted", "5.00 USD added", START))
        uow.audit.record(AuditEntry("admin:1", "adjusted", f"user:{USER}", {}, START))
        return "done"

    return body


@pytest.mark.parametrize("conflicts", [1, DEFAULT_ATTEMPTS - 1])
def test_conflicts_are_retried_whole_and_the_result_committed_once(conflicts):
    world = make_world()
    world.uow.conflicts_to_inject = conflicts
    runs: list[int] = []

    result = run_in_transaction(world.uow, _body_that_writes(runs))

    assert result == "done"
    assert len(runs) == conflicts + 1
    assert world.uow.retries == conflicts
    assert world.uow.conflicts_to_inject == 0
    assert journal_keys(world) == {"adjust:a1"}
    assert world.available(USER) == 5_00
    assert [m.kind for m in outbox(world)] == ["adjusted"]
    assert audit_actions(world) == ["adjusted"]
    assert_books_balanced(world)


def test_exhausting_the_attempts_raises_and_commits_nothing():
    world = make_world()
    world.uow.conflicts_to_inject = DEFAULT_ATTEMPTS
    runs: list[int] = []

    with pytest.raises(TransactionConflict):
        run_in_transaction(world.uow, _body_that_writes(runs))

    assert len(runs) == DEFAULT_ATTEMPTS
    assert world.uow.retries == DEFAULT_ATTEMPTS - 1
    assert world.state.journals == {}
    assert world.state.balances == {}
    assert world.state.outbox == []
    assert world.state.audit == []


def test_the_number_of_attempts_is_bounded_by_the_caller():
    world = make_world()
    world.uow.conflicts_to_inject = 2
    runs: list[int] = []

    with pytest.raises(TransactionConflict):
        run_in_transaction(world.uow, _body_that_writes(runs), attempts=2)

    assert len(runs) == 2
    assert world.state.journals == {}
    with pytest.raises(ValueError):
        run_in_transaction(world.uow, _body_that_writes(runs), attempts=0)


def test_a_conflict_raised_by_the_body_is_retried_too():
    world = make_world()
    runs: list[int] = []
    inner = _body_that_writes(runs)

    def body(uow: UnitOfWork) -> str:
        result = inner(uow)
        if len(runs) == 1:
            raise RetryableConflict("deadlock found when trying to get lock")
        return result

    assert run_in_transaction(world.uow, body) == "done"
    assert len(runs) == 2
    assert world.uow.retries == 1
    assert journal_keys(world) == {"adjust:a1"}
    assert len(outbox(world)) == 1


def test_a_body_that_raises_rolls_back_everything_it_wrote_and_is_not_retried():
    world = make_world()
    number = open_order(world, 100_00)
    before = snapshot(world)
    audit_before = list(world.state.audit)
    runs: list[int] = []
    inner = _body_that_writes(runs)

    def body(uow: UnitOfWork) -> None:
        inner(uow)
        order = uow.orders.get_for_update(number)
        order.state = OrderState.SUCCESS
        uow.orders.save(order)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_in_transaction(world.uow, body)

    assert len(runs) == 1
    assert world.uow.retries == 0
    assert snapshot(world) == before
    assert world.state.audit == audit_before
    assert stored_order(world, number).state is OrderState.PAYING


def test_a_use_case_retried_after_conflicts_credits_once():
    world = make_world()
    number = open_order(world, 100_00)
    world.provider.pay(number)
    world.uow.conflicts_to_inject = 3

    result = report_state(world, number, OrderState.SUCCESS)

    assert result.outcome is Outcome.APPLIED
    assert world.uow.retries == 3
    assert journal_keys(world) == {f"payin:{number}"}
    assert world.available(USER) == 85_00
    assert [m.kind for m in user_rows(world)] == ["order_credited"]
    assert audit_actions(world).count("report_credit") == 1
    assert_books_balanced(world)


def test_a_use_case_that_exhausts_its_attempts_moves_nothing():
    world = make_world()
    number = open_order(world, 100_00)
    before = snapshot(world)
    audit_before = len(world.state.audit)
    world.uow.conflicts_to_inject = DEFAULT_ATTEMPTS

    with pytest.raises(TransactionConflict):
        report_state(world, number, OrderState.SUCCESS)

    assert snapshot(world) == before
    assert len(world.state.audit) == audit_before
    assert stored_order(world, number).state is OrderState.PAYING
    # The same notify delivered again later is processed normally.
    assert report_state(world, number, OrderState.SUCCESS).outcome is Outcome.APPLIED
    assert world.available(USER) == 85_00


def test_a_payout_request_retried_after_a_conflict_holds_once():
    world = make_world()
    paid_order(world, 100_00)
    world.uow.conflicts_to_inject = 2

    payout = request_payout(world.core, USER, 30_00, Network.TRC20, "TX")

    assert world.uow.retries == 2
    assert list(world.state.payouts) == [payout.id]
    assert world.held(USER) == 30_00
    assert world.available(USER) == 55_00
    assert [k for k in journal_keys(world) if k.startswith("payout-hold:")] == [
        f"payout-hold:{payout.id}"
    ]
    assert [m.kind for m in outbox(world) if m.kind == "payout_requested"] == ["payout_requested"]
