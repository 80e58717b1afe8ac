"""The background jobs (reconciliation sweeps and expiry) against the sandbox gateway over
real sockets, on MariaDB. The callback app is not served, so the sandbox's notifies never
arrive: only the jobs can learn what happened at the provider. Time is moved by replacing
the core's clock with a ManualClock started at the real now (orders are opened with the
system clock; the jobs read core.now())."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import UTC, datetime

import attrs
import httpx
import pytest

from adapters.memory import ManualClock
from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.bootstrap import FlamePay, build
from entrypoints.jobs import Jobs
from entrypoints.serving import free_port, serving
from entrypoints.settings import load_settings
from flamepay.cancel_order import cancel_order
from flamepay.closing import CloseOutcome
from simulators.sandbox import CLOSED, SUCCESS, Sandbox, build_app, sandbox_config
from tests.helpers.dbs import scalar
from tests.helpers.web_support import USER, open_orders, settings_values

pytestmark = pytest.mark.mysql


@attrs.define
class Rig:
    """One FlamePay wired by the composition root, the sandbox served on SANDBOX_PORT, and no
    callback app (WEBHOOK_PORT is a free port nobody listens on)."""

    config: MySqlConfig
    values: dict[str, str]
    app: FlamePay
    sandbox: Sandbox
    sandbox_url: str
    stack: ExitStack
    sandbox_stack: ExitStack
    close_calls: list[str] = attrs.field(factory=list)

    def build_another(self) -> FlamePay:
        """A second FlamePay, built separately on the same database (another job runner)."""
        app = build(load_settings(self.values), MySqlDatabase(self.config))
        self.stack.callback(app.close)
        return app

    def stop_sandbox(self) -> None:
        self.sandbox_stack.close()

    def pay(self, number: str) -> None:
        """The payer presses Pay on the sandbox's cashier page."""
        pay_no = self.sandbox.orders[number].pay_order_no
        answer = httpx.post(
            f"{self.sandbox_url}/cashier/{pay_no}/pay",
            data={"real_amount": ""},
            follow_redirects=True,
        )
        assert answer.status_code == 200
        assert self.sandbox.orders[number].state == SUCCESS, answer.text

    def scalar(self, sql: str, params: tuple = ()):
        return scalar(self.config, sql, params)

    def state(self, number: str) -> int:
        return int(
            self.scalar("SELECT state FROM orders WHERE mch_order_no = %s", (number.encode(),))
        )

    def payins(self, number: str) -> int:
        return int(
            self.scalar(
                "SELECT COUNT(*) FROM journals WHERE jkey = %s", (f"payin:{number}".encode(),)
            )
        )

    def outbox(self, kind: str) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM outbox WHERE kind = %s", (kind,)))


def manual_clock(app: FlamePay) -> ManualClock:
    clock = ManualClock(datetime.now(UTC))
    app.core.clock = clock
    return clock


@pytest.fixture
def rig(mysql_database):
    config = mysql_database.config
    stack = ExitStack()
    sandbox_stack = ExitStack()
    stack.callback(sandbox_stack.close)  # runs after the app is closed (LIFO)
    try:
        port = free_port()
        values = settings_values(config, SANDBOX_PORT=str(port))
        app = build(load_settings(values), MySqlDatabase(config))
        stack.callback(app.close)
        url = f"http://127.0.0.1:{port}"
        sandbox = Sandbox(sandbox_config(app, url))
        rig = Rig(config, values, app, sandbox, url, stack, sandbox_stack)
        close = sandbox.close

        def counted_close(body):
            rig.close_calls.append(str(body.get("mchOrderNo")))
            return close(body)

        sandbox.close = counted_close  # the app calls sandbox.close(body) for /api/pay/close
        sandbox_stack.enter_context(serving(build_app(sandbox), port=port))
        yield rig
    finally:
        stack.close()


def test_a_paid_order_without_notify_is_credited_once_older_than_three_minutes(rig) -> None:
    [number] = open_orders(rig.app, 1)
    assert rig.state(number) == 1
    rig.pay(number)
    clock = manual_clock(rig.app)
    jobs = Jobs(rig.app)
    calls = rig.app.provider.calls

    clock.advance(minutes=1)
    run, expired = jobs.run_once()
    assert (run.asked, expired) == (0, 0)
    assert rig.app.provider.calls == calls  # nothing was asked about it
    assert rig.state(number) == 1 and rig.payins(number) == 0

    clock.advance(minutes=3)  # +4 minutes: older than 3
    run, expired = jobs.run_once()
    assert run.asked == 1 and run.failed_calls == 0 and expired == 0
    assert run.outcomes == {"applied": 1}
    assert rig.app.provider.calls == calls + 1
    assert rig.state(number) == 2
    assert rig.payins(number) == 1
    assert rig.outbox("order_credited") == 1

    clock.advance(minutes=5)
    run, _ = jobs.run_once()  # paid: asked again only after a day
    assert run.asked == 0 and rig.payins(number) == 1


def test_a_closed_order_paid_late_is_credited_as_a_late_success_hourly(rig) -> None:
    rig.sandbox.config.late_success = True  # the cashier lets a closed order be paid
    [number] = open_orders(rig.app, 1)
    closed = cancel_order(rig.app.core, USER, number)
    assert closed.outcome is CloseOutcome.CLOSED
    assert rig.close_calls == [number]
    assert rig.state(number) == 6 and rig.sandbox.orders[number].state == CLOSED
    clock = manual_clock(rig.app)
    jobs = Jobs(rig.app)

    clock.advance(minutes=1)  # recently closed: asked at once, nothing to learn yet
    run, _ = jobs.run_once()
    assert run.asked == 1 and run.outcomes == {"unchanged": 1}
    assert rig.state(number) == 6

    rig.pay(number)  # paid at the provider after the local close
    calls = rig.app.provider.calls
    clock.advance(minutes=30)  # +31 minutes: within the hour, not asked again
    run, _ = jobs.run_once()
    assert run.asked == 0 and rig.app.provider.calls == calls
    assert rig.state(number) == 6 and rig.payins(number) == 0

    clock.advance(minutes=31)  # +62 minutes: asked again, and credited as a late success
    run, _ = jobs.run_once()
    assert run.asked == 1 and run.outcomes == {"applied": 1}
    assert rig.state(number) == 2
    assert rig.payins(number) == 1
    assert rig.outbox("alert_late_success") == 1
    assert (
        rig.scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = %s AND target = %s",
            ("report_late_success", number),
        )
        == 1
    )  # Move.LATE_SUCCESS
    assert (
        rig.scalar("SELECT COUNT(*) FROM reviews WHERE rkey LIKE %s", (b"alert:late success:%",))
        == 1
    )

    calls = rig.app.provider.calls
    clock.advance(minutes=20)  # a second run within the hour does not ask about it again
    run, _ = jobs.run_once()
    assert run.asked == 0 and rig.app.provider.calls == calls
    assert rig.payins(number) == 1 and rig.outbox("alert_late_success") == 1


def test_a_closed_order_is_not_asked_about_after_48_hours(rig) -> None:
    rig.sandbox.config.late_success = True
    [number] = open_orders(rig.app, 1)
    cancel_order(rig.app.core, USER, number)
    rig.pay(number)
    clock = manual_clock(rig.app)
    clock.advance(hours=49)
    run, _ = Jobs(rig.app).run_once()
    assert run.asked == 0
    assert rig.state(number) == 6 and rig.payins(number) == 0


def test_an_expired_order_is_closed_at_the_provider_by_the_job(rig) -> None:
    [number] = open_orders(rig.app, 1)
    clock = manual_clock(rig.app)
    clock.advance(minutes=31)
    _, expired = Jobs(rig.app).run_once()
    assert rig.close_calls == [number]  # the sandbox's close endpoint was called
    assert rig.sandbox.orders[number].state == CLOSED
    assert rig.state(number) == 6
    assert expired == 1


def test_expiry_alone_closes_an_expired_order_at_the_provider(rig) -> None:
    """The expiry use case itself works (the bug above is the jobs' ordering of claims)."""
    from flamepay.expire_orders import expire_due_orders

    [number] = open_orders(rig.app, 1)
    clock = manual_clock(rig.app)
    clock.advance(minutes=29)
    assert expire_due_orders(rig.app.core) == []
    clock.advance(minutes=2)
    [closed] = expire_due_orders(rig.app.core)
    assert closed.outcome is CloseOutcome.CLOSED
    assert rig.close_calls == [number]
    assert rig.sandbox.orders[number].state == CLOSED
    assert rig.state(number) == 6


def test_two_runners_at_once_ask_about_each_order_once(rig) -> None:
    numbers = open_orders(rig.app, 10)
    for number in numbers:
        rig.pay(number)
    apps = [rig.app, rig.build_another()]
    start = datetime.now(UTC)
    for app in apps:
        clock = ManualClock(start)
        clock.advance(minutes=4)
        app.core.clock = clock
    calls = [app.provider.calls for app in apps]
    barrier = threading.Barrier(len(apps))
    results: list = [None] * len(apps)

    def runner(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = Jobs(apps[i]).run_once()
        except BaseException as error:  # reported by the main thread
            results[i] = error

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        assert isinstance(result, tuple), result
    asked = [run.asked for run, _ in results]
    assert sum(asked) == 10, asked
    assert sum(app.provider.calls - before for app, before in zip(apps, calls, strict=True)) == 10
    for number in numbers:
        assert rig.payins(number) == 1, number
        assert rig.state(number) == 2, number
    assert rig.scalar("SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 10
    assert rig.outbox("order_credited") == 10


def test_failing_runs_raise_one_fault_alert_per_interval(rig) -> None:
    assert rig.app.settings.alert_interval_minutes == 30
    [number] = open_orders(rig.app, 1)
    rig.stop_sandbox()  # every provider call now fails (connection refused)
    clock = manual_clock(rig.app)
    jobs = Jobs(rig.app)

    clock.advance(minutes=4)
    run, _ = jobs.run_once()
    assert run.asked == 1 and run.failed_calls == 1
    assert rig.outbox("fault_jobs_failing") == 1

    clock.advance(minutes=4)  # the next run fails too, within ALERT_INTERVAL_MINUTES
    run, _ = jobs.run_once()
    assert run.asked == 1 and run.failed_calls == 1
    assert rig.outbox("fault_jobs_failing") == 1
    assert rig.state(number) == 1

    clock.advance(minutes=27)  # +35: 31 minutes after the first alert, a new one
    run, _ = jobs.run_once()
    assert run.failed_calls >= 1
    assert rig.outbox("fault_jobs_failing") == 2
