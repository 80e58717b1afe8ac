"""The reconciler: ask the provider about the orders whose news may never come.

No notify is sent for expiry, for failures (on Jeepay) or for refunds and disputes, and a
notify that found FlamePay down for its whole retry window is never sent again. So, in
bounded batches: open orders older than 3 minutes; orders failed or closed within 48 hours
(each at most once an hour); paid orders within 7 days (each at most once a day). Each order
is claimed with one conditional update first, so several job runners never ask twice.

A refusal of our merchant credentials (wrong merchant number, key or sign) is about no order:
the pass stops at the first one, changes nothing and raises one fault alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from flamepay.apply_report import apply_provider_report
from flamepay.context import Core
from flamepay.errors import ProviderError, ProviderMerchantError, ProviderUnknownOrder
from flamepay.fail_unplaced_order import fail_unplaced_order
from flamepay.order import OPEN_STATES, TERMINAL_UNPAID, Order, OrderState
from flamepay.ports import UnitOfWork
from flamepay.provider_faults import merchant_fault
from flamepay.report import ReportSource

S = OrderState


@attrs.frozen
class Sweep:
    name: str
    states: tuple[OrderState, ...]
    min_age: timedelta | None  # changed at least this long ago
    max_age: timedelta | None  # changed at most this long ago
    every: timedelta  # asked about at most this often


def sweeps(interval: timedelta) -> tuple[Sweep, ...]:
    return (
        Sweep("open", _sorted(OPEN_STATES), timedelta(minutes=3), None, interval),
        Sweep(
            "recently failed or closed",
            _sorted(TERMINAL_UNPAID),
            None,
            timedelta(hours=48),
            timedelta(hours=1),
        ),
        Sweep("recently paid", (S.SUCCESS, S.DISPUTED), None, timedelta(days=7), timedelta(days=1)),
    )


def _sorted(states: frozenset[OrderState]) -> tuple[OrderState, ...]:
    return tuple(sorted(states))


@attrs.define
class ReconcileRun:
    asked: int = 0
    failed_calls: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    stopped: str = ""  # why the pass ended early (the gateway refused our credentials)


def reconcile_stale(
    core: Core,
    interval: timedelta = timedelta(minutes=2),
    batch: int = 50,
    pause: Callable[[], None] = lambda: None,
) -> ReconcileRun:
    """One bounded pass. `pause` runs between provider calls (the rate limit)."""
    run = ReconcileRun()
    for sweep in sweeps(interval):
        now = core.now()
        not_since = now - sweep.every

        def due(
            uow: UnitOfWork,
            sweep: Sweep = sweep,
            now: datetime = now,
            not_since: datetime = not_since,
        ) -> list[Order]:
            return uow.orders.due_for_reconcile(
                sweep.states,
                now - sweep.min_age if sweep.min_age else None,
                now - sweep.max_age if sweep.max_age else None,
                not_since,
                batch,
            )

        for order in core.transaction(due):

            def claim(uow: UnitOfWork, o: Order = order, n: datetime = not_since) -> bool:
                return uow.orders.claim_reconcile(o.id, core.now(), n)

            claimed = core.transaction(claim)
            if not claimed:
                continue  # another runner has it
            run.asked += 1
            run.outcomes[reconcile_one(core, order, run)] += 1
            if run.stopped:
                # Every further call would be refused the same way: ask no more this pass.
                return run
            pause()
    return run


def reconcile_one(core: Core, order: Order, run: ReconcileRun | None = None) -> str:
    try:
        report = core.provider.query_order(order.mch_order_no, order.provider_order_no)
    except ProviderMerchantError as error:
        # Says nothing about this order: it is neither unknown nor failed.
        if run is not None:
            run.stopped = "merchant error"
        merchant_fault(core, error, "reconciliation")
        return "merchant error"
    except ProviderUnknownOrder:
        if order.is_open:
            # Never reached the provider and older than the create call: it cannot be paid.
            fail_unplaced_order(core, order.mch_order_no)
            return "never placed"
        return "unknown at the provider"
    except ProviderError:
        if run is not None:
            run.failed_calls += 1
        return "no answer"
    return apply_provider_report(core, report, ReportSource.RECONCILE).outcome.value
