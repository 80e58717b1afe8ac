"""Ask the gateway about one order and apply its answer (source: query).

A notify may be a replay: a payer can keep a validly signed copy of their own success notify,
and a gateway retries the same body for hours. So a move that lifts a block on the user's
money (releasing a dispute) is never taken on a notify's word; the notify path calls this,
outside any transaction, and only the gateway's own answer may release.
"""

from __future__ import annotations

from flamepay.apply_report import ReportResult, apply_provider_report
from flamepay.context import Core
from flamepay.report import ReportSource


def confirm_by_query(core: Core, mch_order_no: str) -> ReportResult:
    """ProviderError when the gateway does not answer: nothing changed, ask again later."""
    report = core.provider.query_order(mch_order_no)
    return apply_provider_report(core, report, ReportSource.QUERY)
