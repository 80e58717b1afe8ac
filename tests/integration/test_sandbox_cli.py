"""`flamepay sandbox` as a real process: loopback only.

Each test gets a sandbox installation of its own (a migrated SQLite file and a .env naming it)
and a clean environment, so a developer's .env or a CI database cannot leak in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from adapters import sqlite
from adapters.installation import read_installation
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import DIALECTS, Merchant
from adapters.sqlite import SqliteDatabase
from entrypoints.serving import free_port
from flamepay.order import OrderState
from flamepay.ports import CreateOrderRequest
from tests.helpers import ROOT


@pytest.fixture
def installation(tmp_path: Path) -> dict[str, str]:
    """The environment of a process run against a fresh sandbox installation."""
    database = tmp_path / "flamepay.sqlite3"
    sqlite.migrate(database, "sandbox")
    env_file = tmp_path / ".env"
    env_file.write_text(f"PROVIDER_BASE_URL=sandbox\nSQLITE_PATH={database}\n", encoding="utf-8")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "FLAMEPAY_ENV_FILE": str(env_file),
        "SQLITE_PATH": str(database),  # also read back by the tests
    }


def sandbox_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "entrypoints", "sandbox", "--host", host, "--port", str(port)]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3"])
def test_sandbox_refuses_a_non_loopback_host_with_one_line(installation, host):
    done = subprocess.run(
        sandbox_command(host, free_port()),
        env=installation,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert host in lines[0] and "loopback" in lines[0]
    assert "Traceback" not in done.stderr


def free_ipv6_port() -> int | None:
    """A free port on ::1, or None without an IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            return probe.getsockname()[1]
    except OSError:
        return None


def port_of(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


@pytest.fixture
def run_sandbox(installation) -> Iterator:
    """run_sandbox(host, port) starts `flamepay sandbox`; it is stopped after the test."""
    started: list[subprocess.Popen] = []

    def run(host: str, port: int) -> subprocess.Popen:
        process = subprocess.Popen(
            sandbox_command(host, port),
            env=installation,
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def wait_healthy(process: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            answer = httpx.get(f"{base_url}/healthz", timeout=2, trust_env=False)
            assert answer.json() == {"status": "ok", "orders": 0}
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"no sandbox at {base_url}")


def client_for(installation: dict[str, str], base_url: str) -> HttpProviderGateway:
    """A client with the installation's own sandbox merchant and key."""
    database = SqliteDatabase(Path(installation["SQLITE_PATH"]))
    try:
        merchant = read_installation(database)
    finally:
        database.close()
    assert merchant.merchant_no and merchant.merchant_key
    return HttpProviderGateway(
        base_url, DIALECTS["ggusonepay"], Merchant(merchant.merchant_no, merchant.merchant_key)
    )


def create(client: HttpProviderGateway):
    request = CreateOrderRequest("FP-CLI-1", 1500, "usd", "ALI_QR", "Package", 1800)
    return client.create_order(request)


def test_sandbox_serves_on_loopback_with_the_installation_merchant(installation, run_sandbox):
    """The control for the refusals above: the same settings start on 127.0.0.1."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    wait_healthy(run_sandbox("127.0.0.1", port), base_url)
    client = client_for(installation, base_url)
    try:
        report = create(client)
    finally:
        client.close()
    assert report.state == OrderState.PAYING
    assert report.cashier_url == f"{base_url}/cashier/{report.provider_order_no}"
    page = httpx.get(report.cashier_url, trust_env=False)
    assert page.status_code == 200 and "FP-CLI-1" in page.text


@pytest.mark.skipif(free_ipv6_port() is None, reason="no IPv6 loopback (::1) on this machine")
def test_sandbox_on_ipv6_loopback_gives_usable_cashier_urls(installation, run_sandbox):
    port = free_ipv6_port()
    assert port is not None
    base_url = f"http://[::1]:{port}"
    wait_healthy(run_sandbox("::1", port), base_url)
    client = client_for(installation, base_url)
    try:
        report = create(client)
    finally:
        client.close()
    assert report.cashier_url is not None
    assert report.cashier_url.startswith(f"{base_url}/cashier/"), report.cashier_url
    assert (urlsplit(report.cashier_url).hostname, port_of(report.cashier_url)) == ("::1", port)
