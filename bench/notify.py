"""Notify throughput: unique valid success notifies for distinct orders, through the real
callback app (`flamepay web`, 1 and 2 workers) against MariaDB, at concurrency 1, 16 and 64;
beside it the floor: the exact statements of one notify, captured from the app, replayed on
persistent PyMySQL connections at the same concurrency.

    .venv/bin/python -m bench.notify [--requests 1000] [--write docs/benchmarks.md]

MariaDB keeps innodb_flush_log_at_trx_commit=1 (every commit is flushed). After each run the
number of payin journals must equal the number of requests, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pymysql

from adapters import mysql_ops
from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.provider.notify import parse_notify
from adapters.sql.session import Session
from bench.common import (
    bench_mysql,
    machine,
    replace_section,
    server_variable,
    summary,
    wait_healthy,
)
from entrypoints.serving import free_port
from entrypoints.web import NotifyHandler
from flamepay.report import ReportSource
from tests.helpers.dbs import wipe_mysql
from tests.helpers.web_support import notify_fields, open_orders, settings_values, wire

ROOT = Path(__file__).resolve().parent.parent


# --- through the app --------------------------------------------------------------------------
async def _fire(url: str, bodies: list[dict[str, str]], concurrency: int) -> tuple[list, float]:
    latencies: list[float] = []
    failures: list[str] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                response = await client.post(f"{url}/notify", data=body)
                latencies.append(time.perf_counter() - started)
                if (response.status_code, response.text) != (200, "success"):
                    failures.append(f"{response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} notifies failed, e.g. {failures[0]}")
    return latencies, elapsed


def through_app(config: MySqlConfig, requests: int, concurrency: int, workers: int) -> dict:
    wipe_mysql(config)
    app = wire(config)
    numbers = open_orders(app, requests)
    bodies = [notify_fields(app, n) for n in numbers]
    port = free_port()
    env = {
        **os.environ,
        **settings_values(
            config,
            WEBHOOK_PORT=str(port),
            LOG_LEVEL="WARNING",
            MYSQL_POOL_SIZE=os.environ.get("BENCH_POOL_SIZE", "5"),
        ),
        "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints", "web", "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        latencies, elapsed = asyncio.run(_fire(url, bodies, concurrency))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        app.close()
    payins = _count(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'")
    if payins != requests:
        raise SystemExit(f"{payins} payin journals for {requests} notifies")
    return summary(latencies, elapsed)


# --- the floor ------------------------------------------------------------------------------------
@contextlib.contextmanager
def captured_statements(log: list | None):
    """Record every statement the SQL sessions run, as (sql, params or rows, lastrowid, many),
    by wrapping Session's two methods for the block (the product carries no hook for it)."""
    if log is None:
        yield
        return
    execute, executemany = Session.execute, Session.executemany

    def record_execute(self, sql, params=()):
        count = execute(self, sql, params)
        values = tuple(params)
        if self.dialect.adapt is not None:
            values = self.dialect.adapt(values)
        log.append((self.dialect.sql(sql), values, self.cursor.lastrowid, False))
        return count

    def record_executemany(self, sql, rows):
        rows = list(rows)
        count = executemany(self, sql, rows)
        adapt = self.dialect.adapt or tuple
        log.append((self.dialect.sql(sql), [adapt(tuple(r)) for r in rows], None, True))
        return count

    Session.execute, Session.executemany = record_execute, record_executemany
    try:
        yield
    finally:
        Session.execute, Session.executemany = execute, executemany


class Capture:
    """The statements of one notify, as the app ran them, with what varies per order marked."""

    def __init__(self, config: MySqlConfig, app) -> None:
        warmup, sample = open_orders(app, 2)
        handler = NotifyHandler(app)
        self._apply(app, handler, warmup, None)  # creates the accounts, as a steady state has
        order = app.core.provider.orders[sample]
        self.number, self.pay_no = sample, order.pay_order_no
        with MySqlDatabase(config).raw_connection() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT id FROM orders WHERE mch_order_no = %s", (sample.encode(),))
            self.order_id = cursor.fetchone()[0]
        self.statements: list[tuple[str, object, int | None, bool]] = []
        self._apply(app, handler, sample, self.statements)

    @staticmethod
    def _apply(app, handler, number: str, log: list | None) -> None:
        fields = notify_fields(app, number)
        notify = parse_notify(
            urlencode(fields).encode(), "application/x-www-form-urlencoded", b"", app.notify_keys
        )
        with captured_statements(log):
            handler._apply(notify.report, ReportSource.NOTIFY, "127.0.0.1", dict(fields))

    def for_order(self, number: str, pay_no: str, order_id: int):
        """The statements with this order's number, provider number and id substituted."""

        def swap(value):
            if isinstance(value, bytes):
                return value.replace(self.number.encode(), number.encode()).replace(
                    self.pay_no.encode(), pay_no.encode()
                )
            if isinstance(value, str):
                return value.replace(self.number, number).replace(self.pay_no, pay_no)
            return value

        for sql, params, lastrowid, many in self.statements:
            if many:
                yield sql, [tuple(swap(v) for v in row) for row in params], lastrowid, True
                continue
            values = [swap(v) for v in params]
            if sql.startswith("INSERT INTO journals"):
                values[3] = order_id
            if sql.startswith("UPDATE orders"):
                values[-1] = order_id
            yield sql, tuple(values), lastrowid, False


def floor(config: MySqlConfig, requests: int, concurrency: int) -> tuple[dict, int]:
    wipe_mysql(config)
    app = wire(config)
    # Captured on this very database (account ids and all), after a warm-up notify.
    capture = Capture(config, app)
    numbers = open_orders(app, requests)
    ids = {}
    with MySqlDatabase(config).raw_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT mch_order_no, id FROM orders")
        ids = {k.decode(): v for k, v in cursor.fetchall()}
    plans = [
        capture.for_order(n, app.core.provider.orders[n].pay_order_no, ids[n]) for n in numbers
    ]
    plans = [list(p) for p in plans]
    app.close()
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(reversed(plans))
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        connection = pymysql.connect(**config.connect_kwargs())  # persistent, like a pool's
        cursor = connection.cursor()
        start.wait()
        while True:
            with lock:
                if not queue:
                    break
                plan = queue.pop()
            began = time.perf_counter()
            connection.begin()
            journal_id = None
            for sql, params, _, many in plan:
                if many:
                    if sql.startswith("INSERT INTO ledger_entries"):
                        params = [(journal_id, *row[1:]) for row in params]
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
                    cursor.fetchall()
                    if sql.startswith("INSERT INTO journals"):
                        journal_id = cursor.lastrowid
            connection.commit()
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result = summary(latencies, time.perf_counter() - began)
    payins = _count(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'")
    if payins != requests + 2:  # the warm-up and the captured notify, and every replay
        raise SystemExit(f"floor: {payins - 2} payin journals for {requests} replays")
    return result, len(capture.statements)


def _count(config: MySqlConfig, sql: str) -> int:
    with MySqlDatabase(config).raw_connection() as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


# --- the report -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--write", help="update this markdown file's notify section")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    config = bench_mysql("fp_bench_notify")
    mysql_ops.migrate(config, "sandbox")
    flush = server_variable(config, "innodb_flush_log_at_trx_commit")
    version = server_variable(config, "version")
    rows = []
    floors = {}
    statements = 0
    for c in levels:
        floors[c], statements = floor(config, args.requests, c)
        print(f"floor c={c}: {floors[c]}", flush=True)
        for w in worker_counts:
            app = through_app(config, args.requests, c, w)
            print(f"app workers={w} c={c}: {app}", flush=True)
            rows.append((w, c, app, floors[c]))
    lines = [
        "## Notify throughput (`bench/notify.py`)",
        "",
        f"Command: `.venv/bin/python -m bench.notify --requests {args.requests}`. "
        f"Machine: {machine()}. MariaDB {version}, innodb_flush_log_at_trx_commit={flush}, "
        "server, client and database on the same 2 cores. Each run: "
        f"{args.requests} unique valid success notifies for distinct orders of one user; "
        "the payin journals counted afterwards equal the requests.",
        "",
        f"The floor replays the {statements} statements of one notify, captured "
        "from the app, in one transaction per notify on persistent PyMySQL connections.",
        "",
        "| workers | concurrency | app req/s | app p50 ms | app p99 ms | floor req/s | "
        "floor p50 ms | floor p99 ms | app/floor rate |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w, c, app, fl in rows:
        lines.append(
            f"| {w} | {c} | {app['rps']:.0f} | {app['p50_ms']:.1f} | {app['p99_ms']:.1f} | "
            f"{fl['rps']:.0f} | {fl['p50_ms']:.1f} | {fl['p99_ms']:.1f} | "
            f"{app['rps'] / fl['rps']:.2f} |"
        )
    target = [r for r in rows if r[1] == 16]
    verdicts = []
    for w, _, app, fl in target:
        ratio = app["rps"] / fl["rps"]
        verdicts.append(
            f"- workers={w}, concurrency 16: {ratio:.2f} of the floor's rate "
            f"({'meets' if ratio >= 0.5 else 'misses'} the 0.5 target), p99 {app['p99_ms']:.1f} ms "
            f"({'meets' if app['p99_ms'] < 50 else 'misses'} the 50 ms target)."
        )
    lines += [
        "",
        "Targets at concurrency 16 (at least half the floor's rate, p99 under 50 ms):",
        "",
        *verdicts,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section(args.write, "bench-notify", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
