"""Secrets never reach the logs: the redacting filter on its own, then the whole product at
DEBUG for every logger (httpx, httpcore, telegram), through a Telegram 5xx and a provider 5xx,
with a recognisable bot token and merchant key."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from urllib.parse import quote, quote_plus

import httpx
import pytest

from adapters.mysql import MySqlDatabase
from adapters.provider import signing
from entrypoints.bootstrap import build
from entrypoints.bot.application import BotRuntime
from entrypoints.bot.runner import BotThread
from entrypoints.logs import REDACTED, RedactSecrets, configure_logging
from entrypoints.serving import free_port, serving
from entrypoints.settings import load_settings
from entrypoints.web import build_web_app
from simulators.sandbox import Sandbox, build_app, sandbox_config
from simulators.telegram import BotApiEmulator
from tests.helpers.bot_support import ADMIN, Product, activated_user, ask, press
from tests.helpers.web_support import ROOT, settings_values

SECRET_TOKEN = "987654321:RECOGNISABLE-secret-token-xyz"
TOKEN_TAIL = SECRET_TOKEN.split(":", 1)[1]
KEY = "k3y/With+Plus&Eq=Z"  # for the unit tests: characters URL encoding changes
USER = 601
LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext", "hypercorn.error")


def forms(secret: str) -> set[str]:
    """The secret and its URL-encoded spellings."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


def record(msg: object, args: tuple | dict = (), exc_info=None, stack_info=None):
    return logging.LogRecord(
        "t", logging.INFO, __file__, 1, msg, args, exc_info, None, sinfo=stack_info
    )


def formatted(redact: RedactSecrets, rec: logging.LogRecord) -> str:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(redact)
    handler.handle(rec)
    return handler.stream.getvalue()


# --- the filter ----------------------------------------------------------------------------------
def test_secrets_in_the_message_and_its_arguments_are_replaced() -> None:
    redact = RedactSecrets([SECRET_TOKEN, KEY])
    text = formatted(redact, record(f"GET https://api/bot{SECRET_TOKEN}/getMe key={KEY}"))
    assert text == f"GET https://api/bot{REDACTED}/getMe key={REDACTED}\n"
    text = formatted(redact, record("POST %s/bot%s/x %r", ("http://h", SECRET_TOKEN, KEY)))
    assert text == f"POST http://h/bot{REDACTED}/x '{REDACTED}'\n"
    text = formatted(redact, record("token=%(token)s", ({"token": SECRET_TOKEN},)))
    assert text == f"token={REDACTED}\n"
    # Arguments that do not fit the format are still shown, redacted.
    text = formatted(redact, record("%s and %s", (SECRET_TOKEN,)))
    assert REDACTED in text and SECRET_TOKEN not in text


def test_url_encoded_secrets_are_replaced() -> None:
    redact = RedactSecrets([SECRET_TOKEN, KEY])
    for secret in (SECRET_TOKEN, KEY):
        for form in (quote(secret, safe=""), quote(secret)):
            assert form != secret
            text = formatted(redact, record(f"url=https://h/x?v={form}&n=1"))
            assert text == f"url=https://h/x?v={REDACTED}&n=1\n", form
    assert quote(SECRET_TOKEN, safe="") == "987654321%3ARECOGNISABLE-secret-token-xyz"


def test_a_secret_inside_another_is_replaced_whole_and_short_ones_are_ignored() -> None:
    redact = RedactSecrets(["abcd", "abcdefgh", "", "xyz"])
    assert redact.redact("abcdefgh abcd xyz") == f"{REDACTED} {REDACTED} xyz"


def test_exceptions_and_stacks_are_redacted() -> None:
    redact = RedactSecrets([SECRET_TOKEN])
    try:
        raise ConnectionError(f"cannot reach https://api/bot{SECRET_TOKEN}/getUpdates")
    except ConnectionError:
        exc_info = sys.exc_info()
    rec = record("send failed", exc_info=exc_info, stack_info=f"Stack: bot{SECRET_TOKEN}")
    text = formatted(redact, rec)
    assert SECRET_TOKEN not in text and TOKEN_TAIL not in text
    assert "Traceback" in text
    assert f"ConnectionError: cannot reach https://api/bot{REDACTED}/getUpdates" in text
    assert f"Stack: bot{REDACTED}" in text
    # A chained cause carries the secret too.
    try:
        try:
            raise ValueError(f"inner {quote(SECRET_TOKEN, safe='')}")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError:
        exc_info = sys.exc_info()
    text = formatted(redact, record("chained", exc_info=exc_info))
    assert "ValueError: inner ***" in text and "987654321%3A" not in text


def test_configure_logging_filters_every_logger_through_the_root(restore_logging) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", [SECRET_TOKEN], stream=stream)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        assert logger.isEnabledFor(logging.DEBUG), name
        logger.debug("%s sees https://h/bot%s/getMe", name, SECRET_TOKEN)
    text = stream.getvalue()
    for name in LOGGERS:
        assert f"logger={name} {name} sees https://h/bot{REDACTED}/getMe" in text
    assert SECRET_TOKEN not in text and TOKEN_TAIL not in text


# --- the whole product ---------------------------------------------------------------------------
@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    propagate = {name: logging.getLogger(name).propagate for name in LOGGERS}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, value in propagate.items():
        logging.getLogger(name).propagate = value


class FailOnce:
    """ASGI middleware in front of the sandbox: the next request to `path` (once armed)
    is answered with HTTP 500, as a gateway in trouble would."""

    def __init__(self, app, path: str) -> None:
        self.app = app
        self.path = path
        self.armed = 0
        self.failed = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and self.armed:
            self.armed -= 1
            self.failed += 1
            while (await receive()).get("more_body"):
                pass
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
            return
        await self.app(scope, receive, send)


def installation_key(config) -> str:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT merchant_key FROM installation WHERE id = 1")
            value = cursor.fetchone()[0]
    finally:
        connection.close()
    return value.decode() if isinstance(value, bytes) else value


def all_rows(config, table: str) -> str:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table}")
            rows = cursor.fetchall()
    finally:
        connection.close()
    return "\n".join(
        " | ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row)
        for row in rows
    )


@pytest.mark.mysql
def test_the_e2e_flow_at_debug_logs_no_secret(mysql_database, restore_logging, capfd) -> None:
    config = mysql_database.config
    key = installation_key(config)
    assert len(key) >= 16
    emulator_port, sandbox_port, web_port = free_port(), free_port(), free_port()
    values = settings_values(
        config,
        BOT_TOKEN=SECRET_TOKEN,
        LOG_LEVEL="DEBUG",
        ADMIN_IDS=str(ADMIN),
        TELEGRAM_API_URL=f"http://127.0.0.1:{emulator_port}/bot",
        SANDBOX_PORT=str(sandbox_port),
        WEBHOOK_PORT=str(web_port),
    )
    settings = load_settings(values)
    assert settings.bot_token == SECRET_TOKEN and settings.log_level == "DEBUG"
    stream = io.StringIO()
    # As `flamepay run` does, plus the installation's merchant key (the sandbox's key).
    configure_logging(settings.log_level, (*settings.secrets(), key), stream=stream)
    for name in LOGGERS:
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name

    stack = ExitStack()
    try:
        emulator = BotApiEmulator(SECRET_TOKEN)
        stack.enter_context(serving(emulator.app, port=emulator_port))
        app = build(settings, MySqlDatabase(config))
        stack.callback(app.close)
        assert app.merchant.key == key
        sandbox = Sandbox(sandbox_config(app, f"http://127.0.0.1:{sandbox_port}"))
        gateway = FailOnce(build_app(sandbox), "/api/pay/query")
        stack.enter_context(serving(gateway, port=sandbox_port))
        stack.enter_context(serving(build_web_app(app), port=web_port))
        runtime = BotRuntime(app, poll_timeout=1)
        runtime.outbox.interval = 0.2
        bot = BotThread(runtime)
        bot.start()
        stack.callback(bot.stop)
        product = Product(app, emulator, sandbox, bot, config, stack)

        product.add_package("100")
        activated_user(product, USER)
        choose = ask(product, USER, "/pay", "Choose an amount")
        card = press(product, USER, choose, "100.00 USD", "To be credited: 85.00 USD")

        # The provider answers one query with HTTP 500; the client retries it.
        calls = app.provider.calls
        gateway.armed = 1
        press(product, USER, card, "Check status", "State: waiting for payment")
        assert gateway.failed == 1
        assert app.provider.calls == calls + 2

        # Telegram answers one sendMessage with HTTP 500: the credit message is retried.
        cashier = next(
            line.split("Pay here: ", 1)[1]
            for line in card.text.splitlines()
            if line.startswith("Pay here: ")
        )
        sends = emulator.call_counts["sendMessage"]
        emulator.fail_next("sendMessage", status=500)
        paid = httpx.post(f"{cashier}/pay", data={"real_amount": "100.00"}, follow_redirects=True)
        assert paid.status_code == 200
        emulator.wait_for(
            lambda m: m.chat_id == USER and "85.00 USD credited" in m.text, timeout=20
        )
        assert emulator.call_counts["sendMessage"] >= sends + 2
        time.sleep(0.5)  # a last getUpdates or two
    finally:
        stack.close()

    logs = stream.getvalue()
    captured = capfd.readouterr()
    # The logs did capture the HTTP clients at DEBUG, with the token redacted in place.
    assert "logger=httpx" in logs and "logger=httpcore" in logs and "logger=telegram" in logs
    assert f"/bot{REDACTED}/getUpdates" in logs
    assert f'/bot{REDACTED}/sendMessage "HTTP/1.1 500' in logs
    assert '/api/pay/query "HTTP/1.1 500' in logs
    places = {
        "logs": logs,
        "stderr": captured.err,
        "stdout": captured.out,
        "audit_log": all_rows(config, "audit_log"),
        "callback_events": all_rows(config, "callback_events"),
    }
    assert places["audit_log"] and places["callback_events"]  # there was something to check
    secrets = forms(SECRET_TOKEN) | forms(TOKEN_TAIL) | forms(key)
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} appears in {place}"


# --- every process kind, as a real process (issue 15 fault 10) -----------------------------------
PROCESS_KEY = "RECOGNISABLE/merchant+key=0123456789"  # URL encoding changes it, as a key might
# Run in the child: the command itself, plus a thread that, once the test says the process is
# up, logs a line carrying every secret, through the root logger as any library would.
PROBE = """
import logging, os, sys, threading, time
from entrypoints.cli import main

def probe():
    while not os.path.exists(os.environ["PROBE_TRIGGER"]):
        time.sleep(0.05)
    logging.getLogger("probe").warning(
        "probe token=%s key=%s", os.environ["BOT_TOKEN"], os.environ["PROVIDER_KEY"])

threading.Thread(target=probe, daemon=True).start()
sys.exit(main(sys.argv[1:]))
"""


class Child:
    """A `flamepay <kind>` process whose merged output is collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROBE, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, what, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if what(self.text) if callable(what) else what in self.text:
                return
            if self.process.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"the process ended:\n{self.text[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{what!r} never came:\n{self.text[-3000:]}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.reader.join(10)
        self.process.stdout.close()
        return self.text


def _healthy(url: str):
    def check(_: str) -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _other_merchants_notify(url: str) -> httpx.Response:
    """A notify correctly signed with PROCESS_KEY whose order number is the key itself and
    whose merchant is another's: refused 401, and logged with `order=<the key>`."""
    fields = {
        "mchNo": "SOMEONE-ELSE",
        "mchOrderNo": PROCESS_KEY,
        "amount": "100",
        "currency": "usd",
        "state": "2",
    }
    return httpx.post(f"{url}/notify", data=signing.signed(fields, PROCESS_KEY), timeout=10)


KINDS = ["run", "web", "bot", "jobs", "sandbox"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_issue15_fault10_every_process_kind_logs_redacted_at_log_level(tmp_path, kind) -> None:
    """Issue 15 fault 10: `flamepay web` and `flamepay bot` (what the split systemd units run)
    never set up logging: LOG_LEVEL was ignored, INFO lines such as `notify result=` were
    lost, and what Python's last-resort handler printed was not redacted. Each long-running
    kind now logs as `flamepay run` does (web in its worker processes too): at DEBUG, with
    the bot token and the merchant key forced into log lines, the expected lines appear and
    no form of either secret does."""
    emulator = BotApiEmulator(SECRET_TOKEN)
    with serving(emulator.app) as emulator_url:
        web_port, sandbox_port = free_port(), free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MYSQL_", "BOT_", "ADMIN", "PROVIDER_", "LOG_"))
        }
        env.update(
            FLAMEPAY_ENV_FILE=str(ROOT / "tests/data/empty.env"),
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            BOT_TOKEN=SECRET_TOKEN,
            ADMIN_IDS="11",
            PROVIDER_BASE_URL="sandbox",
            PROVIDER_KEY=PROCESS_KEY,
            LOG_LEVEL="DEBUG",
            SQLITE_PATH=str(tmp_path / "flamepay.sqlite3"),
            TELEGRAM_API_URL=f"{emulator_url}/bot",
            WEBHOOK_PORT=str(web_port),
            SANDBOX_PORT=str(sandbox_port),
            RECONCILE_INTERVAL_SECONDS="5",
            PROBE_TRIGGER=str(tmp_path / "probe"),
        )
        migrate = [sys.executable, "-m", "entrypoints", "migrate"]
        migrated = subprocess.run(migrate, cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert migrated.returncode == 0, migrated.stderr
        args = {"web": ["web", "--workers", "2"], "sandbox": ["sandbox"]}.get(kind, [kind])
        child = Child(args, env, tmp_path)
        expected = ["probe token=*** key=***", "level=DEBUG"]
        try:
            if kind in ("run", "web"):
                url = f"http://127.0.0.1:{web_port}"
                child.wait_for(_healthy(url))
                for _ in range(4):  # over two workers: likely both, and at least one
                    assert _other_merchants_notify(url).status_code == 401
                expected.append(f"notify result=other_merchant order={REDACTED} status=401")
            if kind in ("run", "bot"):
                child.wait_for(lambda _: emulator.call_counts["getUpdates"] >= 2)
                expected.append(f"/bot{REDACTED}/getUpdates")
            if kind == "jobs":
                child.wait_for("jobs asked=0 failed_calls=0 expired=0")
            if kind == "sandbox":
                child.wait_for(_healthy(f"http://127.0.0.1:{sandbox_port}"))
            (tmp_path / "probe").touch()
            for line in expected:
                child.wait_for(line, seconds=30)
        finally:
            output = child.stop()
    secrets = forms(SECRET_TOKEN) | forms(TOKEN_TAIL) | forms(PROCESS_KEY)
    leaked = [secret for secret in secrets if secret in output]
    assert leaked == [], output[-3000:]
    assert "Traceback" not in output, output[-3000:]
