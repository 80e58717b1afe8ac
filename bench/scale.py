"""Flat cost from ten thousand to a million orders.

At 10,000 and at 1,000,000 orders (seeded by bench/seed_data.py through the project's own
schema) it measures: notify p50/p99 through the real app (`flamepay web`), the /balance and
/history use cases (page 1 and page 50 of the heavy user), /orders_search, /stats,
`flamepay ledger-check` (time and peak memory) and `flamepay reconcile --stale`; row counts
come from COUNT(*). The table, with the ratio large/small, goes into docs/benchmarks.md.

    .venv/bin/python -m bench.scale [--small 10000] [--large 1000000] [--reuse] [--write F]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from adapters.mysql import MySqlConfig, MySqlDatabase
from bench.common import (
    bench_mysql,
    machine,
    percentile,
    replace_section,
    server_variable,
    wait_healthy,
)
from bench.notify import _fire
from bench.seed_data import HEAVY_USER, seed
from entrypoints.serving import free_port, serving
from flamepay.balances import read_balances
from flamepay.search_orders import search_orders
from flamepay.see_user import see_user
from flamepay.stats import read_stats
from flamepay.user_history import user_history
from simulators.sandbox import Sandbox, SandboxConfig, build_app
from tests.helpers.web_support import notify_fields, open_orders, settings_values, wire

ROOT = Path(__file__).resolve().parent.parent
ADMIN = 1


def timed(fn, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return {
        "p50_ms": percentile(samples, 50) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
    }


def env_for(config: MySqlConfig, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        **settings_values(config, LOG_LEVEL="WARNING", **extra),
        "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
    }
    return env


def child_run(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in KiB, output) of one `flamepay` command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        raise SystemExit(f"flamepay {' '.join(args)} failed: {output[-500:]}")
    return time.perf_counter() - started, usage.ru_maxrss, output


def notify_latency(config: MySqlConfig, count: int = 400, concurrency: int = 4) -> dict:
    app = wire(config)
    numbers = open_orders(app, count, user=HEAVY_USER + 1)
    bodies = [notify_fields(app, n) for n in numbers]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints", "web"],
        cwd=ROOT,
        env=env_for(config, WEBHOOK_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        asyncio.run(_fire(url, bodies[:50], concurrency))  # warm-up
        latencies, _ = asyncio.run(_fire(url, bodies[50:], concurrency))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        app.close()
    return {"p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


def measure(config: MySqlConfig, users: int) -> dict:
    app = wire(config)
    core = app.core
    core.admin_ids = frozenset({ADMIN})
    rng = random.Random(3)
    results: dict = {}

    def balance() -> None:
        user = rng.randint(2, users)
        see_user(core, user, f"user{user}", f"User {user}")
        read_balances(core, user)

    results["/balance"] = timed(balance, 300)
    cursor = None
    for _ in range(49):  # walk to page 50 of the heavy user's history
        cursor = user_history(core, HEAVY_USER, cursor).next_before
    results["/history page 1"] = timed(lambda: user_history(core, HEAVY_USER, None), 200)
    results["/history page 50"] = timed(lambda: user_history(core, HEAVY_USER, cursor), 200)
    number = f"S{rng.randint(1, 1000):011d}"
    results["/orders_search (order number)"] = timed(
        lambda: search_orders(core, ADMIN, number), 100
    )
    results["/orders_search (user id)"] = timed(
        lambda: search_orders(core, ADMIN, str(rng.randint(2, users))), 100
    )
    results["/stats"] = timed(lambda: read_stats(core, ADMIN), 5)
    app.close()
    results["notify"] = notify_latency(config)
    seconds, rss, output = child_run(["ledger-check"], env_for(config))
    if "ledger-check: clean" not in output:
        raise SystemExit(f"ledger-check is not clean: {output[-800:]}")
    results["ledger-check"] = {"seconds": seconds, "peak_rss_mib": rss / 1024}
    sandbox = Sandbox(SandboxConfig(mch_no="x", key="k" * 24))
    with serving(build_app(sandbox)) as url:
        port = url.rsplit(":", 1)[1]
        seconds, _, output = child_run(["reconcile", "--stale"], env_for(config, SANDBOX_PORT=port))
    results["reconcile --stale"] = {"seconds": seconds, "output": output.strip()[-200:]}
    connection = MySqlDatabase(config).raw_connection()
    with connection.cursor() as c:
        counts = {}
        for table in ("users", "orders", "journals", "ledger_entries", "accounts"):
            c.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(c.fetchone()[0])
    connection.close()
    results["counts"] = counts
    return results


def ratio(large: float, small: float) -> str:
    return f"{large / small:.2f}" if small else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep already seeded databases")
    parser.add_argument("--write", help="update this markdown file's scale section")
    args = parser.parse_args(argv)
    runs = {}
    for label, orders, name in (
        ("small", args.small, "fp_scale_small"),
        ("large", args.large, "fp_scale_large"),
    ):
        config = bench_mysql(name)
        users = max(100, orders // 100)
        if not args.reuse:
            started = time.perf_counter()
            seed(config, orders, users)
            print(f"seeded {name} in {time.perf_counter() - started:.0f} s", flush=True)
        runs[label] = measure(config, users)
        print(label, runs[label], flush=True)
    pool = server_variable(bench_mysql("fp_scale_small"), "innodb_buffer_pool_size")
    small, large = runs["small"], runs["large"]
    rows = []
    for name in (
        "notify",
        "/balance",
        "/history page 1",
        "/history page 50",
        "/orders_search (order number)",
        "/orders_search (user id)",
        "/stats",
    ):
        a, b = small[name], large[name]
        rows.append(
            f"| {name} p50 / p99 ms | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | "
            f"{ratio(b['p50_ms'], a['p50_ms'])} / {ratio(b['p99_ms'], a['p99_ms'])} |"
        )
    lc_a, lc_b = small["ledger-check"], large["ledger-check"]
    rows.append(
        f"| ledger-check seconds | {lc_a['seconds']:.1f} | {lc_b['seconds']:.1f} | "
        f"{ratio(lc_b['seconds'], lc_a['seconds'])} |"
    )
    rows.append(
        f"| ledger-check peak memory MiB | {lc_a['peak_rss_mib']:.0f} | "
        f"{lc_b['peak_rss_mib']:.0f} | "
        f"{ratio(lc_b['peak_rss_mib'], lc_a['peak_rss_mib'])} |"
    )
    rc_a, rc_b = small["reconcile --stale"], large["reconcile --stale"]
    rows.append(
        f"| reconcile --stale seconds | {rc_a['seconds']:.1f} | {rc_b['seconds']:.1f} | "
        f"{ratio(rc_b['seconds'], rc_a['seconds'])} |"
    )
    counts = " ".join(f"{k}={small['counts'][k]:,}/{large['counts'][k]:,}" for k in small["counts"])
    page1, page50 = large["/history page 1"], large["/history page 50"]
    notify_ok = large["notify"]["p99_ms"] <= 1.3 * small["notify"]["p99_ms"]
    balance_ok = large["/balance"]["p50_ms"] <= 1.3 * small["/balance"]["p50_ms"]
    memory_ok = lc_b["peak_rss_mib"] <= 1.5 * lc_a["peak_rss_mib"]
    targets = [
        ("notify p99 within 1.3x", notify_ok),
        ("/balance p50 within 1.3x", balance_ok),
        (
            "/history page 50 within 1.3x of page 1 (large)",
            page50["p50_ms"] <= 1.3 * page1["p50_ms"],
        ),
        ("ledger-check under 60 s (large)", lc_b["seconds"] < 60),
        ("ledger-check peak memory within 1.5x", memory_ok),
    ]
    text = "\n".join(
        [
            "## Scale (`bench/scale.py`)",
            "",
            "Command: `.venv/bin/python -m bench.scale "
            f"--small {args.small} --large {args.large}`. "
            f"Machine: {machine()}. MariaDB innodb_buffer_pool_size={int(pool) // 2**20} MiB "
            f"(left at its default). Rows (small/large, COUNT(*)): {counts}. The heavy user has "
            "1,500 paid orders (150 pages of history). Use-case timings run the code the bot "
            "handler runs, in-process; notify goes through `flamepay web` over HTTP (concurrency "
            "4, fresh orders); ledger-check and reconcile are the commands, timed as processes.",
            "",
            f"| measure | {args.small:,} orders | {args.large:,} orders | ratio large/small |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            "Targets:",
            "",
            *[f"- {name}: {'met' if ok else 'MISSED'}" for name, ok in targets],
            "",
            "`/stats` aggregates every pay-in and refund (its cost grows with the books; it is an "
            "admin command, not on a hot path). `reconcile --stale` is bounded by its batches and "
            "its rate limit towards the gateway, whatever the size.",
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, "bench-scale", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
