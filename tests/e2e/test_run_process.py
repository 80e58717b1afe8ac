"""`flamepay run` as a real process, `flamepay demo`, and `make run`'s first steps."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from adapters.provider import signing
from entrypoints.serving import free_port, serving
from simulators.telegram import BotApiEmulator
from tests.helpers import ROOT
from tests.helpers.bot_support import ask, press

TOKEN = "123456789:AAE_run-process-test-token-abcdef"
ADMIN, USER = 11, 22


def flamepay(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    # With a commit delay, through the launcher that injects it (the product reads none).
    slow = "FLAMEPAY_TEST_COMMIT_DELAY_MS" in env
    launcher = "tests.helpers.slow_commits" if slow else "entrypoints"
    return subprocess.Popen(
        [sys.executable, "-m", launcher, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode(errors="replace"))
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("flamepay run did not become healthy")


@pytest.mark.slow
def test_run_serves_pays_and_stops_cleanly_with_a_notify_in_flight(tmp_path: Path) -> None:
    emulator = BotApiEmulator(TOKEN)
    with serving(emulator.app) as emulator_url:
        web_port, sandbox_port = free_port(), free_port()
        database = tmp_path / "var" / "flamepay.sqlite3"
        (tmp_path / ".env").write_text(
            f"BOT_TOKEN={TOKEN}\nADMIN_IDS={ADMIN}\nPROVIDER_BASE_URL=sandbox\n"
            f"SQLITE_PATH={database}\nTELEGRAM_API_URL={emulator_url}/bot\n"
            f"WEBHOOK_PORT={web_port}\nSANDBOX_PORT={sandbox_port}\nSANDBOX_TIME_SCALE=1000\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "BOT_", "ADMIN"))}
        env.update(
            FLAMEPAY_ENV_FILE=str(tmp_path / ".env"),
            FLAMEPAY_TEST_COMMIT_DELAY_MS="1500",
            PYTHONPATH=str(ROOT),
        )
        process = flamepay(["run"], env, tmp_path)
        url = f"http://127.0.0.1:{web_port}"
        try:
            wait_healthy(url, process)
            banner = emulator.wait_for(lambda m: m.chat_id == ADMIN and "started" in m.plain_text)
            assert "sandbox installation" in banner.plain_text and TOKEN not in banner.plain_text
            made = ask(emulator, ADMIN, "/gencode 1", "code(s)", timeout=30)
            code = made.plain_text.splitlines()[-1]
            ask(emulator, ADMIN, "/gateway ALI_QR Alipay on", "is on", timeout=30)
            ask(emulator, ADMIN, "/package_add ALI_QR Basic 100", "added", timeout=30)
            ask(emulator, ADMIN, "/package_add ALI_QR Small 20", "added", timeout=30)
            ask(emulator, USER, f"/activate {code.strip()}", "Activated", timeout=30)
            choose = ask(emulator, USER, "/pay", "Choose an amount", timeout=30)
            card = press(emulator, USER, choose, "100.00 USD", "To be credited", timeout=30)
            cashier = next(
                line.split("Pay here: ", 1)[1]
                for line in card.plain_text.splitlines()
                if line.startswith("Pay here: ")
            )
            httpx.post(f"{cashier}/pay", data={}, follow_redirects=True, timeout=10)
            emulator.wait_for(
                lambda m: m.chat_id == USER and "85.00 USD credited" in m.plain_text, timeout=30
            )
            # A second order, whose notify is inside its transaction when SIGTERM arrives.
            choose = ask(emulator, USER, "/pay", "Choose an amount", timeout=30)
            card = press(emulator, USER, choose, "20.00 USD", "To be credited", timeout=30)
            number = card.plain_text.splitlines()[0].split()[-1]
            fields = _notify_fields(database, number, 2000)
            answers: list[httpx.Response] = []
            sender = threading.Thread(
                target=lambda: answers.append(httpx.post(f"{url}/notify", data=fields, timeout=30))
            )
            sender.start()
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            sender.join(30)
            output = process.communicate(timeout=60)[0].decode(errors="replace")
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert [(r.status_code, r.text) for r in answers] == [(200, "success")]
    with sqlite3.connect(database) as connection:
        payins = connection.execute("SELECT COUNT(*) FROM journals WHERE kind = 'payin'").fetchone()
    assert payins == (2,)
    assert "Traceback" not in output and TOKEN.split(":")[1] not in output


def _notify_fields(database: Path, number: str, amount: int) -> dict[str, str]:
    with sqlite3.connect(database) as connection:
        merchant, key = connection.execute(
            "SELECT merchant_no, merchant_key FROM installation"
        ).fetchone()
        pay_no = connection.execute(
            "SELECT provider_order_no FROM orders WHERE mch_order_no = ?", (number.encode(),)
        ).fetchone()[0]
    key = key.decode() if isinstance(key, bytes) else key
    fields = {
        "mchNo": merchant,
        "mchOrderNo": number,
        "payOrderNo": pay_no.decode(),
        "amount": str(amount),
        "currency": "usd",
        "state": "2",
    }
    return signing.signed(fields, key)


def test_bad_settings_stop_run_with_their_lines(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"BOT_TOKEN={TOKEN}\nADMIN_IDS=1,x\nPROVIDER_BASE_URL=\nGLOBAL_FEE_PERCENT=101\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "BOT_", "ADMIN"))}
    env.update(FLAMEPAY_ENV_FILE=str(tmp_path / ".env"), PYTHONPATH=str(ROOT))
    process = flamepay(["run"], env, tmp_path)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 2
    lines = output.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        "ADMIN_IDS",
        "PROVIDER_BASE_URL",
        "GLOBAL_FEE_PERCENT",
    ]
    assert lines[3:] == ["flamepay demo runs the whole story offline and needs neither."]
    assert "Traceback" not in output and TOKEN not in output


@pytest.mark.slow
def test_demo_tells_the_whole_story_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "BOT_", "ADMIN"))}
    env.update(PYTHONPATH=str(ROOT), FLAMEPAY_ENV_FILE=str(ROOT / "tests/data/empty.env"))
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tail = result.stdout.strip().splitlines()[-3:]
    assert tail == [
        "Final balances:",
        "  user 2002: available 35.00 USD, on hold 0.00 USD",
        "  ledger-check: clean",
    ]
    assert "user> /pay" in result.stdout and "85.00 USD credited" in result.stdout
