"""The background jobs: reconciliation sweeps and expiry, every RECONCILE_INTERVAL_SECONDS.

Safe when several processes run them (each order is claimed in the database first). A failed
run raises the fault alert, at most once per ALERT_INTERVAL_MINUTES.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from entrypoints.bootstrap import FlamePay
from flamepay.alerts import raise_alert
from flamepay.closing import CloseOutcome
from flamepay.errors import FlamePayError
from flamepay.expire_orders import expire_due_orders
from flamepay.reconcile_stale import ReconcileRun, reconcile_stale

log = logging.getLogger("flamepay.jobs")
CALLS_PER_SECOND = 5  # the rate limit towards the gateway


class Jobs:
    def __init__(self, flamepay: FlamePay, interval: float | None = None) -> None:
        self.flamepay = flamepay
        self.interval = interval or flamepay.settings.reconcile_interval_seconds
        self.runs = 0

    def run_once(self) -> tuple[ReconcileRun, int]:
        """One pass (blocking; call it in a worker thread)."""
        core = self.flamepay.core
        # Expiry first: the sweeps claim the orders they ask about, and an expired order must
        # be closed at the provider, not merely asked about.
        expired = expire_due_orders(core)
        run = reconcile_stale(
            core,
            interval=timedelta(seconds=self.interval),
            pause=lambda: time.sleep(1 / CALLS_PER_SECOND),
        )
        # A close and its fallback query that both got no answer is a failed call too; a
        # refusal of our credentials is not (it has its own alert, provider_merchant).
        run.failed_calls += sum(
            1 for c in expired if c.outcome is CloseOutcome.UNKNOWN and not c.merchant_error
        )
        self.runs += 1
        log.info(
            "jobs asked=%s failed_calls=%s expired=%s outcomes=%s",
            run.asked,
            run.failed_calls,
            len(expired),
            dict(run.outcomes),
        )
        if run.failed_calls:
            self._alert(f"the reconciler could not reach the gateway {run.failed_calls} time(s)")
        return run, len(expired)

    def _alert(self, text: str) -> None:
        with contextlib.suppress(FlamePayError):
            raise_alert(self.flamepay.core, "jobs_failing", text)

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                # The sweeps call the gateway: its own executor, never the database one.
                await loop.run_in_executor(self.flamepay.gateway_executor, self.run_once)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a failed run must not stop the next one
                log.error("jobs run failed: %s", type(error).__name__)
                await loop.run_in_executor(
                    self.flamepay.executor,
                    self._alert,
                    f"a jobs run failed ({type(error).__name__})",
                )
            await asyncio.sleep(self.interval)
