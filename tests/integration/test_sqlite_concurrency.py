"""The concurrency drills, smaller, on the embedded SQLite: threads, and two processes.

SQLite serialises writers on the file (BEGIN IMMEDIATE); the adapter counts how often a unit
of work had to wait for another (`waits`), which is how each drill shows contention really
happened. The same use cases, the same invariants as on MariaDB.
"""

from __future__ import annotations

import io
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest

from adapters.sqlite import SqliteDatabase, check_ledger
from adapters.sqlite import migrate as sqlite_migrate
from flamepay import ledger
from flamepay.activate_user import activate_user
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.approve_payout import approve_payout
from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.errors import AlreadyResolved, Refused
from flamepay.generate_codes import generate_codes
from flamepay.open_order import open_recharge_order
from flamepay.payout import Network
from flamepay.reject_payout import reject_payout
from flamepay.report import ProviderReport, ReportSource
from flamepay.request_payout import request_payout
from flamepay.see_user import see_user
from flamepay.transaction import run_in_transaction
from tests.helpers.dbs import sql_core
from tests.helpers.threads import race

ADMIN = 1


def build_core(path: Path) -> Core:
    return sql_core(SqliteDatabase(path))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "books.sqlite3"
    sqlite_migrate(path, "sandbox")
    return path


def paid_order(core: Core) -> str:
    def body(uow):
        if uow.catalogue.gateway("ALI_QR") is None:
            uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        return uow.catalogue.add_package(Package(0, "ALI_QR", "100", 10000)).id

    number = open_recharge_order(core, 7, run_in_transaction(core.uow, body)).order.mch_order_no
    core.provider.pay(number)
    return number


def fund(core: Core, user_id: int, amount: int) -> None:
    journal = ledger.adjustment(core.ids.token(), user_id, amount, "drill")
    run_in_transaction(core.uow, lambda uow: uow.ledger.post(journal, core.now()))


def balance(core: Core, account: str) -> int:
    with core.uow() as uow:
        return uow.ledger.balance(account)


def assert_clean(path: Path) -> None:
    out = io.StringIO()
    assert check_ledger(path, out) == 0, out.getvalue()


def test_threads_apply_one_report_once(db_path: Path) -> None:
    core = build_core(db_path)
    number = paid_order(core)
    report = core.provider.report(number)
    results = race(12, lambda i: apply_provider_report(core, report, ReportSource.NOTIFY))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert Counter(r.outcome for r in results) == {Outcome.APPLIED: 1, Outcome.UNCHANGED: 11}
    assert balance(core, ledger.available(7)) == 8500
    assert core.uow.database.waits > 0
    assert_clean(db_path)


def test_threads_never_overdraw(db_path: Path) -> None:
    core = build_core(db_path)
    fund(core, 7, 5000)
    results = race(12, lambda i: request_payout(core, 7, 1000, Network.TRC20, "TAddr"))
    accepted = [r for r in results if not isinstance(r, Exception)]
    assert all(isinstance(r, Refused) for r in results if isinstance(r, Exception))
    assert len(accepted) == 5
    assert balance(core, ledger.available(7)) == 0
    assert balance(core, ledger.held(7)) == 5000
    assert core.uow.database.waits > 0
    assert_clean(db_path)


def test_threads_race_approve_and_reject_to_one_winner(db_path: Path) -> None:
    core = build_core(db_path)
    fund(core, 7, 10000)
    waits = 0
    for _ in range(5):
        payout = request_payout(core, 7, 1000, Network.TRC20, "TAddr")
        before = core.uow.database.waits
        results = race(
            2,
            lambda i, p=payout.id: (
                approve_payout(core, ADMIN, p) if i == 0 else reject_payout(core, ADMIN, p, "dup")
            ),
        )
        waits += core.uow.database.waits - before
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert sum(isinstance(r, AlreadyResolved) for r in results) == 1
    assert balance(core, ledger.held(7)) == 0
    assert waits > 0
    assert_clean(db_path)


def test_threads_redeem_a_one_use_code_once(db_path: Path) -> None:
    core = build_core(db_path)
    code = generate_codes(core, ADMIN, uses=1)[0].code
    for i in range(8):
        see_user(core, 100 + i)
    results = race(8, lambda i: activate_user(core, 100 + i, code))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, Refused) for r in results) == 7
    assert core.uow.database.waits > 0


# --- two processes -------------------------------------------------------------------------
def _process_body(path: str, job: str, start, out) -> None:
    core = build_core(Path(path))
    start.wait(60)  # both processes are ready (imports done) before either begins
    done = Counter()
    for i in range(200):
        try:
            if job == "notify":
                report = ProviderReport(
                    mch_order_no=f"N{i % 10}",
                    state=2,
                    amount=10000,
                    currency="usd",
                    merchant="M100",
                )
                done[apply_provider_report(core, report, ReportSource.NOTIFY).outcome.value] += 1
            else:
                request_payout(core, 9, 1000, Network.TRC20, "TAddr")
                done["accepted"] += 1
        except Refused:
            done["refused"] += 1
    done["waits"] = core.uow.database.waits
    out.put(dict(done))


def _seed_orders(core: Core) -> list[str]:
    def body(uow):
        uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        return uow.catalogue.add_package(Package(0, "ALI_QR", "100", 10000)).id

    package_id = run_in_transaction(core.uow, body)
    numbers = []
    for i in range(10):
        core.ids.order_number = lambda i=i: f"N{i}"
        numbers.append(open_recharge_order(core, 7, package_id).order.mch_order_no)
    return numbers


@pytest.mark.parametrize("job", ["notify", "payout"])
def test_two_processes_share_the_file_safely(db_path: Path, job: str) -> None:
    core = build_core(db_path)
    if job == "notify":
        _seed_orders(core)
    else:
        fund(core, 9, 25000)
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_process_body, args=(str(db_path), job, start, out))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    if job == "notify":
        applied = sum(r.get("applied", 0) for r in results)
        assert applied == 10  # each of the ten orders credited once, across both processes
        assert balance(core, ledger.available(7)) == 10 * 8500
    else:
        accepted = sum(r.get("accepted", 0) for r in results)
        assert accepted == 25
        assert balance(core, ledger.available(9)) == 0
        assert balance(core, ledger.held(9)) == 25000
    assert sum(r["waits"] for r in results) > 0  # the processes really met at the file
    assert_clean(db_path)
