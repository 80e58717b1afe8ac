"""Real contention on MariaDB: threads, each on its own pooled connection, released together.

Each drill asserts that contention really happened (a lock wait, a duplicate key, a refusal
or a retry), and shows that it fails against a test-only variant of the adapter with the
lock or the conditional update that protects it removed: the protection is what passes it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime

import attrs
import pytest

from adapters.mysql import MYSQL, MySqlConfig, MySqlDatabase
from adapters.sql.ledger import SqlLedger
from adapters.sql.people import SqlAccessCodes
from adapters.sql.session import from_db_time, to_db_time
from adapters.sql.uow import SqlUnitOfWork
from flamepay import ledger
from flamepay.activate_user import activate_user
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.approve_payout import approve_payout
from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.errors import AlreadyResolved, InsufficientFunds, Refused
from flamepay.generate_codes import generate_codes
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.payout import Network
from flamepay.reject_payout import reject_payout
from flamepay.report import ReportSource
from flamepay.request_payout import request_payout
from flamepay.see_user import see_user
from flamepay.transaction import run_in_transaction
from tests.helpers.dbs import scalar, sql_core
from tests.helpers.threads import race

pytestmark = pytest.mark.mysql

ADMIN = 1
MERCHANT = "M100"
NO_LOCKS = attrs.evolve(MYSQL, name="mysql-without-for-update", for_update="")


# --- test-only variants: what the drills must catch ----------------------------------------
class LedgerWithoutFloorGuard(SqlLedger):
    """Checks the floor on a plain read, then updates unconditionally: the classic bug."""

    def floors_of(self, journal):
        for account in journal.floors():
            if self.balance(account) + journal.amount_of(account) < 0:
                raise InsufficientFunds(account)
        time.sleep(0.02)  # the gap between check and write that real load opens
        return frozenset()


class CodesReadThenWrite(SqlAccessCodes):
    """Reads the code, decides in Python, then updates without a condition."""

    def redeem(self, code, now):
        row = self.s.one(
            "SELECT id, uses, max_uses, expires_at FROM access_codes WHERE code = %s",
            (code.encode(),),
        )
        if row is None or row[1] >= row[2]:
            return None
        expires = from_db_time(row[3])
        if expires is not None and expires <= now:
            return None
        time.sleep(0.02)  # the gap between check and write that real load opens
        self.s.execute(
            "UPDATE access_codes SET uses = uses + 1, last_used_at = %s WHERE id = %s",
            (to_db_time(now), row[0]),
        )
        return self.recent(1000) and next(c for c in self.recent(1000) if c.id == row[0])


class UowWithoutFloorGuard(SqlUnitOfWork):
    ledger_class = LedgerWithoutFloorGuard


class UowReadThenWriteCodes(SqlUnitOfWork):
    access_codes_class = CodesReadThenWrite


# --- helpers ---------------------------------------------------------------------------------
def build_core(config: MySqlConfig, dialect=MYSQL, uow_class=SqlUnitOfWork) -> Core:
    return sql_core(MySqlDatabase(config, dialect), uow_class)


def status(config: MySqlConfig, name: str) -> int:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cursor.fetchone()
            return int(row[1]) if row else 0
    finally:
        connection.close()


def warm(core: Core, n: int) -> None:
    """Open n pooled connections at once, then give them back: the race then starts on
    connections already made, so the threads really meet inside their transactions."""
    database = core.uow.database
    held = [database.begin() for _ in range(n)]
    for connection in held:
        connection.rollback()
        database.release(connection)


def paid_order(core: Core) -> str:
    def body(uow):
        if uow.catalogue.gateway("ALI_QR") is None:
            uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        return uow.catalogue.add_package(Package(0, "ALI_QR", "100", 10000)).id

    package_id = run_in_transaction(core.uow, body)
    number = open_recharge_order(core, 7, package_id).order.mch_order_no
    core.provider.pay(number)
    return number


def fund(core: Core, user_id: int, amount: int) -> None:
    journal = ledger.adjustment(core.ids.token(), user_id, amount, "drill")
    run_in_transaction(core.uow, lambda uow: uow.ledger.post(journal, datetime.now().astimezone()))


# --- 50 identical success notifies -----------------------------------------------------------
def apply_same_report_50_times(config: MySqlConfig, dialect) -> tuple[list[object], str]:
    core = build_core(config, dialect)
    number = paid_order(core)
    report = core.provider.report(number)
    warm(core, 50)
    results = race(50, lambda i: apply_provider_report(core, report, ReportSource.NOTIFY))
    core.uow.database.close()
    return results, number


def test_fifty_identical_success_reports_credit_once(mysql_database) -> None:
    config = mysql_database.config
    waits = status(config, "Innodb_row_lock_waits")
    results, number = apply_same_report_50_times(config, MYSQL)
    assert [r for r in results if isinstance(r, Exception)] == []
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.APPLIED: 1, Outcome.UNCHANGED: 49}
    assert (
        scalar(
            config, "SELECT COUNT(*) FROM journals WHERE jkey = %s", (f"payin:{number}".encode(),)
        )
        == 1
    )
    assert scalar(config, "SELECT COUNT(*) FROM outbox WHERE kind = 'order_credited'") == 1
    assert (
        scalar(
            config, "SELECT balance FROM accounts WHERE name = %s", (ledger.available(7).encode(),)
        )
        == 8500
    )
    # Contention happened: the 49 losers queued on the order row's lock.
    assert status(config, "Innodb_row_lock_waits") > waits


def test_without_for_update_identical_reports_break(mysql_database) -> None:
    results, _ = apply_same_report_50_times(mysql_database.config, NO_LOCKS)
    applied = [r for r in results if not isinstance(r, Exception) and r.outcome is Outcome.APPLIED]
    errors = [r for r in results if isinstance(r, Exception)]
    # Without the lock several see state 1 and try to credit: only the journal's unique key
    # stops a double credit, and the losers fail instead of answering "already applied".
    assert errors or len(applied) > 1


# --- 50 payout requests against 100.00 ---------------------------------------------------------
def request_50_payouts(config: MySqlConfig, uow_class) -> tuple[list[object], Core]:
    core = build_core(config, uow_class=uow_class)
    fund(core, 7, 10000)
    warm(core, 50)
    results = race(50, lambda i: request_payout(core, 7, 1000, Network.TRC20, "TAddr"))
    return results, core


def test_fifty_payout_requests_never_overdraw(mysql_database) -> None:
    config = mysql_database.config
    waits = status(config, "Innodb_row_lock_waits")
    results, core = request_50_payouts(config, SqlUnitOfWork)
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(accepted) + len(refused) == 50, [
        r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)
    ]
    assert 1 <= len(accepted) <= 10
    available = scalar(
        config, "SELECT balance FROM accounts WHERE name = %s", (ledger.available(7).encode(),)
    )
    held = scalar(
        config, "SELECT balance FROM accounts WHERE name = %s", (ledger.held(7).encode(),)
    )
    assert available >= 0
    assert (
        held
        == 1000 * len(accepted)
        == scalar(config, "SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE status = 'pending'")
    )
    assert available + held == 10000
    # Contention happened: requests waited on the account rows, and some were refused.
    assert status(config, "Innodb_row_lock_waits") > waits
    assert refused
    core.uow.database.close()


def test_without_the_conditional_update_payouts_overdraw(mysql_database) -> None:
    config = mysql_database.config
    results, core = request_50_payouts(config, UowWithoutFloorGuard)
    accepted = [r for r in results if not isinstance(r, Exception)]
    available = scalar(
        config, "SELECT balance FROM accounts WHERE name = %s", (ledger.available(7).encode(),)
    )
    assert len(accepted) > 10 or available < 0
    core.uow.database.close()


# --- approve and reject at once ------------------------------------------------------------
def race_resolutions(config: MySqlConfig, dialect, rounds: int) -> list[list[object]]:
    core = build_core(config, dialect)
    fund(core, 7, 100000)
    warm(core, 2)
    outcomes = []
    for _ in range(rounds):
        payout = request_payout(core, 7, 1000, Network.TRC20, "TAddr")
        outcomes.append(
            race(
                2,
                lambda i, p=payout.id: (
                    approve_payout(core, ADMIN, p, None)
                    if i == 0
                    else reject_payout(core, ADMIN, p, "duplicate request")
                ),
            )
        )
    core.uow.database.close()
    return outcomes


def test_approve_and_reject_race_to_one_winner(mysql_database) -> None:
    config = mysql_database.config
    waits = status(config, "Innodb_row_lock_waits")
    rounds = race_resolutions(config, MYSQL, 10)
    for results in rounds:
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1
        assert isinstance(losers[0], AlreadyResolved)
    assert (
        scalar(config, "SELECT balance FROM accounts WHERE name = %s", (ledger.held(7).encode(),))
        == 0
    )
    posted = scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payout-post'")
    voided = scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payout-void'")
    assert posted + voided == 10
    assert status(config, "Innodb_row_lock_waits") > waits


def test_without_for_update_both_resolutions_run(mysql_database) -> None:
    rounds = race_resolutions(mysql_database.config, NO_LOCKS, 10)
    anomalies = [
        results
        for results in rounds
        if not (
            sum(not isinstance(r, Exception) for r in results) == 1
            and any(isinstance(r, AlreadyResolved) for r in results)
        )
    ]
    assert anomalies, "without FOR UPDATE some round should let both admins act"


# --- approve against a refund ------------------------------------------------------------------
class LedgerPausingBeforePayoutPost(SqlLedger):
    """Approve has decided and waits (at most 2 s) before posting: the window in which a
    refund commits under real load, opened on purpose."""

    decided = threading.Event()
    refunded = threading.Event()

    def post(self, journal, now):
        if journal.kind is ledger.JournalKind.PAYOUT_POST:
            self.decided.set()
            self.refunded.wait(2)
        super().post(journal, now)


class LedgerPausingWithoutBalanceLocks(LedgerPausingBeforePayoutPost):
    """The bug of fault 15.4: the balances approve decides on come from its snapshot."""

    def lock_balances(self, accounts):
        return {account: self.balance(account) for account in accounts}


class UowPausingApprove(SqlUnitOfWork):
    ledger_class = LedgerPausingBeforePayoutPost


class UowPausingApproveWithoutLocks(SqlUnitOfWork):
    ledger_class = LedgerPausingWithoutBalanceLocks


def approve_against_refund(config: MySqlConfig, uow_class) -> dict[str, object]:
    """A paid order's 85.00 all requested as a payout; then approve and the order's refund
    race, the refund arriving while approve is between its decision and its commit."""
    core = build_core(config)
    number = paid_order(core)
    apply_provider_report(core, core.provider.report(number), ReportSource.NOTIFY)
    payout = request_payout(core, 7, 8500, Network.TRC20, "TAddr")
    approving = build_core(config, uow_class=uow_class)
    ledger_class = uow_class.ledger_class
    ledger_class.decided.clear()
    ledger_class.refunded.clear()
    done: dict[str, float] = {}
    core.provider.set_state(number, OrderState.REFUNDED)

    def approve():
        try:
            return approve_payout(approving, ADMIN, payout.id, None)
        finally:
            done["approve"] = time.monotonic()

    def refund():
        ledger_class.decided.wait(10)
        try:
            return apply_provider_report(core, core.provider.report(number), ReportSource.RECONCILE)
        finally:
            done["refund"] = time.monotonic()
            ledger_class.refunded.set()

    approved, refunded = race(2, lambda i: approve() if i == 0 else refund())
    core.uow.database.close()
    approving.uow.database.close()
    return {
        "approved": approved,
        "refunded": refunded,
        "done": done,
        "available": scalar(
            config, "SELECT balance FROM accounts WHERE name = %s", (ledger.available(7).encode(),)
        ),
    }


def test_approve_locks_the_balance_it_decides_on(mysql_database) -> None:
    """Issue 15 fault 4: approve read the available balance from its snapshot and locked
    nothing, so a refund committed in between left available at -85.00 with the payout
    approved after it. Now the refund waits for approve's lock (approve first, then the
    refund, a serial order), or approve sees it and refuses."""
    config = mysql_database.config
    waits = status(config, "Innodb_row_lock_waits")
    run = approve_against_refund(config, UowPausingApprove)
    approved, refunded, done = run["approved"], run["refunded"], run["done"]
    assert not isinstance(refunded, Exception), refunded
    assert refunded.outcome is Outcome.APPLIED
    if isinstance(approved, Exception):
        assert isinstance(approved, Refused) and "below zero" in str(approved)
        assert done["refund"] < done["approve"]
    else:
        # Approved: then it committed first, and the refund queued on its lock.
        assert done["approve"] < done["refund"]
        assert status(config, "Innodb_row_lock_waits") > waits
    assert run["available"] == -8500  # the refund took back what had been credited


def test_without_balance_locks_approve_follows_a_refund(mysql_database) -> None:
    run = approve_against_refund(mysql_database.config, UowPausingApproveWithoutLocks)
    approved, done = run["approved"], run["done"]
    # The refund committed while approve waited, and approve still went through.
    assert not isinstance(approved, Exception)
    assert done["refund"] < done["approve"]
    assert run["available"] == -8500


# --- a one-use code, 20 users ------------------------------------------------------------------
def redeem_by_20(config: MySqlConfig, uow_class) -> list[object]:
    core = build_core(config, uow_class=uow_class)
    code = generate_codes(core, ADMIN, uses=1)[0].code
    for i in range(20):
        see_user(core, 1000 + i, f"user{i}")  # as the bot does on first contact
    warm(core, 20)
    results = race(20, lambda i: activate_user(core, 1000 + i, code))
    core.uow.database.close()
    return results


def test_a_one_use_code_lets_exactly_one_in(mysql_database) -> None:
    config = mysql_database.config
    waits = status(config, "Innodb_row_lock_waits")
    results = redeem_by_20(config, SqlUnitOfWork)
    activated = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(activated) == 1 and len(refused) == 19
    assert scalar(config, "SELECT COUNT(*) FROM users WHERE activated_at IS NOT NULL") == 1
    assert scalar(config, "SELECT uses FROM access_codes") == 1
    assert scalar(config, "SELECT COUNT(*) FROM activation_attempts") == 19
    assert status(config, "Innodb_row_lock_waits") > waits


def test_read_then_write_codes_let_several_in(mysql_database) -> None:
    results = redeem_by_20(mysql_database.config, UowReadThenWriteCodes)
    activated = [r for r in results if not isinstance(r, Exception)]
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)]
    assert len(activated) > 1 or unexpected


# --- a real deadlock ---------------------------------------------------------------------------
def test_a_deadlock_is_retried_whole_and_nothing_half_done_is_kept(mysql_database) -> None:
    config = mysql_database.config
    core = build_core(config)
    first, second = paid_order(core), paid_order(core)
    deadlocks = status(config, "Innodb_deadlocks")
    both_locked_first = threading.Barrier(2)
    attempts = Counter()

    def body(name: str, mine: str, other: str):
        def run(uow):
            attempts[name] += 1
            uow.orders.get_for_update(mine)
            uow.audit.record(_audit(name))  # a write that must not survive a rolled-back try
            if attempts[name] == 1:
                both_locked_first.wait(10)  # both hold their first row: opposite order next
            uow.orders.get_for_update(other)
            return name

        return run

    results = race(
        2,
        lambda i: run_in_transaction(
            core.uow, body("a", first, second) if i == 0 else body("b", second, first)
        ),
    )
    assert sorted(results) == ["a", "b"], results
    assert status(config, "Innodb_deadlocks") > deadlocks
    assert core.uow.retries >= 1
    assert sum(attempts.values()) >= 3  # the victim ran its whole body again
    # Each body's write is there exactly once: the victim's first try was rolled back.
    assert scalar(config, "SELECT COUNT(*) FROM audit_log WHERE action = 'drill'") == 2
    core.uow.database.close()


def _audit(name: str):
    from flamepay.records import AuditEntry

    return AuditEntry(f"drill:{name}", "drill", name, {}, datetime.now().astimezone())
