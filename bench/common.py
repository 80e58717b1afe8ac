"""Shared pieces of the benchmarks: the machine, percentiles, a MariaDB for the run."""

from __future__ import annotations

import os
import platform
import statistics
from urllib.parse import unquote, urlparse

from adapters.mysql import MySqlConfig, MySqlDatabase


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as info:
            kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
            memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    return {
        "rps": len(latencies) / seconds if seconds else float("nan"),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def bench_mysql(database: str) -> MySqlConfig:
    url = urlparse(os.environ.get("FLAMEPAY_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306"))
    return MySqlConfig(
        host=url.hostname or "127.0.0.1",
        port=url.port or 3306,
        user=unquote(url.username or "root"),
        password=unquote(url.password or ""),
        database=database,
        pool_size=70,
    )


def server_variable(config: MySqlConfig, name: str) -> str:
    connection = MySqlDatabase(config).raw_connection(database=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL VARIABLES LIKE %s", (name,))
            row = cursor.fetchone()
            return str(row[1]) if row else "?"
    finally:
        connection.close()


def replace_section(path: str, marker: str, text: str) -> None:
    """Put `text` between <!-- marker:start --> and <!-- marker:end --> in the file."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        current = "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in current and end in current:
        before = current.split(start)[0]
        after = current.split(end, 1)[1]
        current = before + block + after
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(current)


def wait_healthy(url: str, seconds: float = 30) -> None:
    """Until the callback app at `url` answers /healthz with 200."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy")
