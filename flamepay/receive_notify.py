"""A provider's notify arrives (verified, or replaced by the gateway's answer to a query):
apply the report and log the delivery with its outcome, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flamepay.apply_report import ReportResult, apply_in
from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.records import CallbackEvent
from flamepay.report import ProviderReport, ReportSource


def receive_notify(
    core: Core,
    report: ProviderReport,
    source: ReportSource,
    remote: str,
    fields: Mapping[str, str],
    before_commit: Callable[[], None] | None = None,
) -> ReportResult:
    """`before_commit` runs inside the transaction just before it commits (for drills that
    stop a process while notifies are inside theirs); the product passes none."""

    def body(uow: UnitOfWork) -> ReportResult:
        result = apply_in(uow, core, report, source)
        uow.callback_events.record(
            CallbackEvent(report.mch_order_no, result.outcome.value, remote, fields, core.now())
        )
        if before_commit is not None:
            before_commit()
        return result

    return core.transaction(body)
