"""deploy/: the systemd units, the nginx site, the backup scripts and the MySQL grants.

The static checks need nothing. systemd-analyze, nginx (with openssl) and the sqlite3 shell
are used when installed and skipped with the reason otherwise. The grants and
mysql-backup.sh run against MariaDB/MySQL (marked mysql): a fresh database and three fresh
accounts per run, dropped afterwards.
"""

from __future__ import annotations

import configparser
import gzip
import io
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adapters import mysql_ops
from adapters import sqlite as fp_sqlite
from adapters.installation import read_installation
from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.sql.migrate import MigrationError, split_statements
from adapters.sqlite import SqliteDatabase
from flamepay.activate_user import activate_user
from flamepay.alerts import raise_alert
from flamepay.apply_report import apply_provider_report
from flamepay.approve_payout import approve_payout
from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.errors import Refused, StorageUnavailable
from flamepay.generate_codes import generate_codes
from flamepay.open_order import open_recharge_order
from flamepay.payout import Network
from flamepay.records import CallbackEvent
from flamepay.reject_payout import reject_payout
from flamepay.report import ReportSource
from flamepay.request_payout import request_payout
from flamepay.resolve_review import Resolution, resolve_review
from flamepay.see_user import see_user
from flamepay.transaction import run_in_transaction
from tests.helpers import ROOT
from tests.helpers.dbs import mysql_base_config, mysql_required, sql_core

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
NGINX_SITE = DEPLOY / "nginx" / "flamepay.conf"
MYSQL_BACKUP = DEPLOY / "backup" / "mysql-backup.sh"
SQLITE_BACKUP = DEPLOY / "backup" / "sqlite-backup.sh"
GRANTS = DEPLOY / "mysql" / "grants.sql"
APPLICATION_PART = re.compile(r"^-- >>> application", re.M)  # what sed matches in grants.sql
DAY = 86400
USER, ADMIN = 7, 1

DEPLOY_FILES = (
    "README.md",
    "systemd/flamepay.service",
    "systemd/flamepay-bot.service",
    "systemd/flamepay-web.service",
    "systemd/flamepay-jobs.service",
    "nginx/flamepay.conf",
    "backup/mysql-backup.sh",
    "backup/sqlite-backup.sh",
    "backup/RESTORE.md",
    "mysql/grants.sql",
)
UNITS = {
    "flamepay.service": "run",
    "flamepay-bot.service": "bot",
    "flamepay-web.service": "web --workers 2",
    "flamepay-jobs.service": "jobs",
}
SPLIT = ("flamepay-bot.service", "flamepay-web.service", "flamepay-jobs.service")
SHELL_SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
# Variables a developer's shell may hold that would change what the scripts do.
SCRIPT_VARIABLES = (
    "BACKUP_KEEP_DAYS",
    "BACKUP_DIR",
    "SQLITE_PATH",
    "SQLITE3",
    "PYTHON",
    "MYSQL_DATABASE",
    "MYSQL_DEFAULTS_FILE",
    "MYSQLDUMP",
)


def test_the_deploy_files_are_there() -> None:
    missing = [name for name in DEPLOY_FILES if not (DEPLOY / name).is_file()]
    assert not missing, missing
    for script in (MYSQL_BACKUP, SQLITE_BACKUP):
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
    readme = (DEPLOY / "README.md").read_text()
    for name in DEPLOY_FILES[1:]:
        assert Path(name).name in readme, f"deploy/README.md does not mention {name}"


# --- shell scripts ------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_parses(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines


def code_lines(script: Path) -> str:
    return "\n".join(
        line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")
    )


def test_mysql_backup_takes_its_credentials_from_an_option_file() -> None:
    code = code_lines(MYSQL_BACKUP)
    # The dump: a consistent snapshot with routines and triggers; the option file comes first.
    assert re.search(
        r'"\$dump" --defaults-extra-file="\$defaults_file" \\\n\s*--single-transaction '
        r"--routines --triggers",
        code,
    )
    invocation = code[code.index('"$dump" --defaults-extra-file') :].split("| gzip")[0]
    assert not re.search(r"(\s-p|--password|--user|MYSQL_PWD)", invocation)  # nor in `ps`
    assert "MYSQL_PWD" not in code
    assert "gzip" in code and "BACKUP_KEEP_DAYS:-14" in code


def test_sqlite_backup_uses_the_online_backup_api() -> None:
    code = code_lines(SQLITE_BACKUP)
    assert '"$source_db" ".backup \'$partial\'"' in code  # the shell's .backup
    assert "source.backup(target)" in code  # sqlite3.Connection.backup, without the shell
    assert "BACKUP_KEEP_DAYS:-14" in code
    assert not re.search(r"\bcp\b", code)  # a plain copy of a live WAL database is not a backup


# --- systemd ------------------------------------------------------------------------------------
def read_unit(name: str) -> configparser.ConfigParser:
    # strict=False: a unit may repeat a key (Environment=); the last one wins here.
    unit = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    unit.optionxform = str  # keys are case-sensitive
    unit.read_string((SYSTEMD / name).read_text(), source=name)
    return unit


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value.strip())
    assert match, f"unexpected time span {value!r}"
    return int(match[1]) * (60 if match[2] in ("min", "m") else 1)


@pytest.mark.parametrize(("name", "command"), UNITS.items())
def test_unit_file(name: str, command: str) -> None:
    unit = read_unit(name)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert service["ExecStart"] == f"/opt/flamepay/.venv/bin/flamepay {command}"
    assert service["User"] == "flamepay"
    assert service["Group"] == "flamepay"
    assert service["WorkingDirectory"] == "/opt/flamepay"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    # Longer than hypercorn's 5 s grace and the gateway timeout (PROVIDER_TIMEOUT_SECONDS=15).
    assert seconds(service["TimeoutStopSec"]) >= 20
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"].split() == ["/opt/flamepay/var"]
    assert service["PrivateTmp"] == "yes"
    assert service["ProtectHome"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Unit"]["Description"]


def test_only_one_setup_runs_the_bot() -> None:
    units = {name: read_unit(name) for name in UNITS}

    def conflicts(name: str) -> set[str]:
        return set(units[name]["Unit"].get("Conflicts", "").split())

    assert conflicts("flamepay.service") == set(SPLIT)
    for name in SPLIT:
        assert conflicts(name) == {"flamepay.service"}, name
    runs_bot = {
        name
        for name, unit in units.items()
        if unit["Service"]["ExecStart"].split()[1] in ("run", "bot")
    }
    assert runs_bot == {"flamepay.service", "flamepay-bot.service"}
    for name in runs_bot:  # the comments say why, where an operator reads them
        text = (SYSTEMD / name).read_text()
        assert "ONE" in text and "outbox" in text, name


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the units were parsed with configparser)")
    # verify insists that ExecStart's program exists: point it at this checkout's entry point.
    program = Path(sys.executable).parent / "flamepay"
    if not program.exists():
        pytest.skip(f"no flamepay entry point at {program} to stand in for /opt/flamepay/.venv")
    copies = []
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert "/opt/flamepay/.venv/bin/flamepay" in text
        copy = tmp_path / name
        copy.write_text(text.replace("/opt/flamepay/.venv/bin/flamepay", str(program)))
        copies.append(str(copy))
    result = subprocess.run(
        [analyze, "verify", *copies], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    # verify exits 0 on warnings (an unknown key, a bad value): any line about our units fails.
    about_ours = [line for line in output.splitlines() if any(n in line for n in UNITS)]
    assert result.returncode == 0, output
    assert not about_ours, "\n".join(about_ours)


# --- nginx --------------------------------------------------------------------------------------
@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def find(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def walk(self) -> Iterator[Directive]:
        for child in self.block or []:
            yield child
            yield from child.walk()


def parse_nginx(text: str) -> Directive:
    """nginx's configuration grammar, enough for one site file: directives and blocks."""
    text = re.sub(r"(^|\s)#[^\n]*", r"\1", text)
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};]+', text)
    root = Directive("main", [], [])
    stack = [root]
    words: list[str] = []
    for token in tokens:
        if token == "{":
            block = Directive(words[0], words[1:], [])
            stack[-1].block.append(block)
            stack.append(block)
            words = []
        elif token == ";":
            stack[-1].block.append(Directive(words[0], words[1:]))
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token.strip("\"'"))
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def test_nginx_proxies_only_notify() -> None:
    text = NGINX_SITE.read_text()
    site = parse_nginx(text)
    servers = site.find("server")
    assert len(servers) == 2
    https = [s for s in servers if any("443" in d.args[0] for d in s.find("listen"))]
    http = [s for s in servers if any(d.args[0].endswith("80") for d in s.find("listen"))]
    assert len(https) == 1 and len(http) == 1
    https, http = https[0], http[0]

    # Exactly one proxied location in the whole file: = /notify, POST only.
    proxied = [
        (location.args, d.args)
        for location in site.walk()
        if location.name == "location"
        for d in location.walk()
        if d.name == "proxy_pass"
    ]
    assert proxied == [(["=", "/notify"], ["http://127.0.0.1:8000"])]
    assert len([d for d in site.walk() if d.name == "proxy_pass"]) == 1
    locations = {" ".join(d.args): d for d in https.find("location")}
    assert set(locations) == {"= /notify", "/"}
    notify = locations["= /notify"]
    assert [d.args for d in notify.find("limit_except")] == [["POST"]]
    headers = {d.args[0].lower(): d.args[1] for d in notify.find("proxy_set_header")}
    assert headers["x-forwarded-for"] in ("$remote_addr", "$proxy_add_x_forwarded_for")
    # Everything else is 404: /metrics and /healthz are never exposed.
    assert [d.args for d in locations["/"].block] == [["404"]]
    assert [d.name for d in locations["/"].block] == ["return"]

    body_limits = [d for d in site.walk() if d.name == "client_max_body_size"]
    assert [d.args for d in body_limits] == [["64k"]]
    assert body_limits[0] in https.block or body_limits[0] in notify.block
    assert "client_max_body_size 64k;" in text

    assert all("ssl" in d.args for d in https.find("listen"))
    for key in ("ssl_certificate", "ssl_certificate_key"):
        [directive] = https.find(key)
        assert directive.args[0].startswith("/etc/letsencrypt/live/")
    redirect = [d for d in http.walk() if d.name == "return"]
    assert [d.args for d in redirect] == [["301", "https://$host$request_uri"]]

    assert "TRUSTED_PROXIES=127.0.0.1" in text and "NOTIFY_ALLOWED_IPS" in text


class Upstream(BaseHTTPRequestHandler):
    """Stands in for the callback service: records what reaches it, answers success."""

    seen: list[tuple[str, str, dict[str, str], bytes]]

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append((self.command, self.path, headers, body))  # type: ignore[attr-defined]
        payload = b"success"
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nginx_binary() -> str | None:
    explicit = os.environ.get("FLAMEPAY_TEST_NGINX")
    if explicit:
        return explicit
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def test_nginx_serves_only_notify(tmp_path: Path) -> None:
    """The real nginx with the site file: only POST /notify reaches the callback service."""
    import httpx

    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (set FLAMEPAY_TEST_NGINX to a binary to run this)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed for a test certificate)")
    for folder in ("logs", "tmp"):
        (tmp_path / folder).mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    upstream.seen = []  # type: ignore[attr-defined]
    serving = threading.Thread(target=upstream.serve_forever, daemon=True)
    serving.start()
    http_port, https_port = free_port(), free_port()
    site = NGINX_SITE.read_text()
    replacements = {
        "/etc/letsencrypt/live/pay.example.com/fullchain.pem": str(tmp_path / "cert.pem"),
        "/etc/letsencrypt/live/pay.example.com/privkey.pem": str(tmp_path / "key.pem"),
        "/var/log/nginx/": f"{tmp_path}/logs/",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "http://127.0.0.1:8000": f"http://127.0.0.1:{upstream.server_address[1]}",
    }
    for old, new in replacements.items():
        assert old in site, f"{old} is no longer in the site file; update this test"
        site = site.replace(old, new)
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)  # no IPv6 in the sandbox
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "tmp"
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log;
events {{}}
http {{
    access_log {tmp_path}/logs/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_body_buffer_size 128k;
    include {tmp_path}/site.conf;
}}
""")
    log = (tmp_path / "nginx.out").open("wb")
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"https://127.0.0.1:{https_port}"
        with httpx.Client(verify=False, timeout=10) as client:
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, (tmp_path / "nginx.out").read_text()
                try:
                    client.get(f"{base}/")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            seen = upstream.seen  # type: ignore[attr-defined]
            seen.clear()

            form = b"mchNo=M1&mchOrderNo=P1&state=2&sign=ABC"
            answer = client.post(
                f"{base}/notify",
                content=form,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Forwarded-For": "6.6.6.6",
                },
            )
            assert (answer.status_code, answer.text) == (200, "success")
            [(method, path, headers, body)] = seen
            assert (method, path, body) == ("POST", "/notify", form)
            # The address nginx accepted the connection from, never what the caller claimed.
            assert headers["x-forwarded-for"] == "127.0.0.1"

            assert client.post(f"{base}/notify", content=b"x" * 60_000).status_code == 200
            assert len(seen) == 2
            for path in ("/metrics", "/healthz", "/health", "/", "/notify/", "/notifyx", "/x"):
                assert client.get(f"{base}{path}").status_code == 404, path
                assert client.post(f"{base}{path}", content=b"a=1").status_code == 404, path
            assert client.get(f"{base}/notify").status_code in (403, 404, 405)
            assert client.post(f"{base}/notify", content=b"x" * 70_000).status_code == 413
            assert len(seen) == 2, seen[2:]

            plain = client.get(f"http://127.0.0.1:{http_port}/notify")
            assert plain.status_code == 301
            assert plain.headers["location"].startswith("https://")
            assert len(seen) == 2
    finally:
        process.terminate()
        process.wait(20)
        log.close()
        upstream.shutdown()
        upstream.server_close()
        serving.join(10)


# --- the books both backends back up -----------------------------------------------------------
def make_core(database) -> Core:
    return sql_core(database, admins=frozenset({ADMIN}))


def write_books(core: Core) -> None:
    """Every table the application writes, through the use cases and the repositories."""
    see_user(core, USER, "alice", "Alice")
    see_user(core, USER, "alice_renamed", "Alice")  # users: UPDATE
    code = generate_codes(core, ADMIN)[0]
    with pytest.raises(Refused):
        activate_user(core, USER, "ACDE3F4G7HJ9KM")  # activation_attempts
    activate_user(core, USER, code.code)  # access_codes: UPDATE

    def catalogue(uow):
        uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay QR"))  # gateways: UPDATE
        package = uow.catalogue.add_package(Package(0, "ALI_QR", "100", 10000))
        uow.catalogue.save_package(Package(package.id, "ALI_QR", "100.00", 10000))
        return package.id

    package_id = run_in_transaction(core.uow, catalogue)
    numbers = [open_recharge_order(core, USER, package_id).order.mch_order_no for _ in range(3)]
    for number in numbers[:2]:
        core.provider.pay(number)
        apply_provider_report(core, core.provider.report(number), ReportSource.NOTIFY)
    core.provider.pay(numbers[2])  # a report that fails the match rule: a review
    apply_provider_report(core, core.provider.report(numbers[2], amount=1), ReportSource.NOTIFY)
    [review] = run_in_transaction(core.uow, lambda uow: uow.reviews.pending())
    resolve_review(core, ADMIN, review.id, Resolution.REJECT, "test")  # reviews: UPDATE
    request_payout(core, USER, 2000, Network.TRC20, "TAddr")
    approve_payout(core, ADMIN, request_payout(core, USER, 3000, Network.BEP20, "0xabc").id, "tx-9")
    reject_payout(core, ADMIN, request_payout(core, USER, 1500, Network.TRC20, "TAddr").id, "no")
    raise_alert(core, "deploy_test", "a test alert")

    def records(uow):
        now = core.now()
        uow.callback_events.record(CallbackEvent(numbers[0], "applied", "127.0.0.1", {}, now))
        assert uow.callback_events.count("applied", now) >= 1
        first = uow.outbox.pending(1)[0]
        uow.outbox.mark_sent(first.id, now)  # outbox: UPDATE
        uow.outbox.record_copy(first.ref or "ref", 1, 42, now)
        assert uow.outbox.copies(first.ref or "ref") == [(1, 42)]
        assert uow.alerts.claim("deploy_test", now, 0).sent  # alerts: SELECT, UPDATE

    run_in_transaction(core.uow, records)


# --- SQLite backups -----------------------------------------------------------------------------
def run_script(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARIABLES}
    return subprocess.run(
        ["bash", str(script), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def age(path: Path, days: float) -> Path:
    path.write_bytes(b"old")
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def sqlite_env(mode: str, tmp_path: Path) -> dict[str, str]:
    if mode == "sqlite3 shell":
        if shutil.which("sqlite3") is None:
            pytest.skip("the sqlite3 shell is not installed (the python fallback is tested)")
        return {}
    return {"SQLITE3": str(tmp_path / "no-sqlite3-here"), "PYTHON": sys.executable}


def dump_sqlite(path: Path) -> dict[str, object]:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        schema = sorted(connection.execute("SELECT type, name, sql FROM sqlite_master"))
        tables = [n for t, n, _ in schema if t == "table" and not n.startswith("sqlite_")]
        rows = {t: sorted(map(repr, connection.execute(f'SELECT * FROM "{t}"'))) for t in tables}
        return {"schema": schema, "rows": rows}
    finally:
        connection.close()


@pytest.fixture
def live_sqlite(tmp_path: Path) -> Iterator[Path]:
    """A migrated SQLite file with books in it, and a writer holding rows in its WAL."""
    path = tmp_path / "var" / "flamepay.sqlite3"
    path.parent.mkdir()
    fp_sqlite.migrate(path, "sandbox")
    database = SqliteDatabase(path)
    try:
        write_books(make_core(database))
    finally:
        database.close()
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the next rows stay in the -wal file
        writer.execute(
            "INSERT INTO audit_log (actor, action, target, details, at) "
            "VALUES ('system', 'in_wal_only', 'x', '{}', '2026-01-01 00:00:00')"
        )
        assert Path(f"{path}-wal").stat().st_size > 0
        yield path
    finally:
        writer.close()


@pytest.mark.parametrize("mode", ["sqlite3 shell", "python fallback"])
def test_sqlite_backup_copies_a_live_database(mode: str, live_sqlite: Path, tmp_path) -> None:
    backups = tmp_path / "backups"
    env = sqlite_env(mode, tmp_path)
    result = run_script(
        SQLITE_BACKUP, "14", SQLITE_PATH=str(live_sqlite), BACKUP_DIR=str(backups), **env
    )
    assert result.returncode == 0, result.stderr
    [copy] = backups.iterdir()  # no partial file, no -wal/-shm left behind
    assert re.fullmatch(r"flamepay-\d{8}-\d{6}\.sqlite3", copy.name)
    assert stat.S_IMODE(copy.stat().st_mode) & 0o077 == 0  # private: it holds user data
    assert str(copy) in result.stdout
    copied, source = dump_sqlite(copy), dump_sqlite(live_sqlite)
    assert copied == source
    assert "'in_wal_only'" in str(copied["rows"]["audit_log"])  # committed but not checkpointed
    assert len(copied["rows"]["journals"]) >= 3


@pytest.mark.parametrize("mode", ["sqlite3 shell", "python fallback"])
def test_sqlite_backup_keeps_n_days(mode: str, live_sqlite: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    old = age(backups / "flamepay-20200101-000000.sqlite3", 15)
    partial = age(backups / ".flamepay-20200101-000000.sqlite3.partial", 20)
    recent = age(backups / "flamepay-20200103-000000.sqlite3", 13)
    foreign = age(backups / "notes-20200101.txt", 30)
    env = {
        "SQLITE_PATH": str(live_sqlite),
        "BACKUP_DIR": str(backups),
        **sqlite_env(mode, tmp_path),
    }

    # The argument wins over BACKUP_KEEP_DAYS.
    result = run_script(SQLITE_BACKUP, "14", BACKUP_KEEP_DAYS="1", **env)
    assert result.returncode == 0, result.stderr
    assert not old.exists() and not partial.exists()
    assert recent.exists() and foreign.exists()
    assert f"deleted {old}" in result.stdout
    new = {p for p in backups.glob("flamepay-*.sqlite3") if p != recent}
    assert len(new) == 1

    # Without an argument, BACKUP_KEEP_DAYS.
    result = run_script(SQLITE_BACKUP, BACKUP_KEEP_DAYS="12", **env)
    assert result.returncode == 0, result.stderr
    assert not recent.exists() and foreign.exists()
    assert new <= set(backups.glob("flamepay-*.sqlite3"))  # today's copies stay


@pytest.mark.parametrize("mode", ["sqlite3 shell", "python fallback"])
def test_sqlite_backup_fails_loudly_and_deletes_nothing(
    mode: str, live_sqlite: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    old = age(backups / "flamepay-20200101-000000.sqlite3", 30)
    env = {"BACKUP_DIR": str(backups), **sqlite_env(mode, tmp_path)}

    missing = run_script(SQLITE_BACKUP, "14", SQLITE_PATH=str(tmp_path / "nothing.sqlite3"), **env)
    assert missing.returncode != 0
    assert "no database file" in missing.stderr
    assert not (tmp_path / "nothing.sqlite3").exists()  # not created empty either

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database, " * 200)
    broken = run_script(SQLITE_BACKUP, "14", SQLITE_PATH=str(garbage), **env)
    assert broken.returncode != 0
    assert "sqlite-backup:" in broken.stderr

    for keep in ("0", "abc", "-3", "1.5"):
        refused = run_script(SQLITE_BACKUP, keep, SQLITE_PATH=str(live_sqlite), **env)
        assert refused.returncode != 0, keep
        assert "KEEP_DAYS" in refused.stderr, keep

    assert sorted(backups.iterdir()) == [old]  # nothing written, nothing pruned


# --- MySQL: grants, least privilege, backups ------------------------------------------------------
@dataclass
class Accounts:
    database: str
    host: str  # the host part of the accounts: how the server sees this test's connections
    suffix: str
    password: str
    root: MySqlConfig
    app: MySqlConfig
    migrate: MySqlConfig
    ro: MySqlConfig

    def grantee(self, config: MySqlConfig) -> str:
        return f"'{config.user}'@'{self.host}'"


def render_grants(database: str, suffix: str, host: str, password: str) -> str:
    """grants.sql for this database, with this run's account names, host and password."""
    text = GRANTS.read_text()
    assert "`flamepay`." in text and "'<change-me>'" in text
    text = text.replace("`flamepay`.", f"`{database}`.")
    text = re.sub(r"'(flamepay(?:_migrate|_ro)?)'@'localhost'", rf"'\g<1>_{suffix}'@'{host}'", text)
    text = text.replace("'<change-me>'", f"'{password}'")
    statements = "\n".join(split_statements(text))
    for leftover in ("'flamepay'@", "`flamepay`.", "<change-me>", "'localhost'"):
        assert leftover not in statements, leftover
    return text


def execute_all(connection, sql: str) -> int:
    statements = split_statements(sql)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.commit()
    return len(statements)


def query(config: MySqlConfig, sql: str, params: tuple = ()) -> list[tuple]:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            rows = list(cursor.fetchall())
        connection.commit()
        return rows
    finally:
        connection.close()


def refused(config: MySqlConfig, sql: str) -> int:
    """The MySQL error code the statement is refused with (fails when it is allowed)."""
    import pymysql

    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            try:
                cursor.execute(sql)
            except pymysql.err.MySQLError as error:
                return error.args[0]
        connection.rollback()
        pytest.fail(f"{config.user} was allowed to run: {sql}")
    finally:
        connection.close()


def drop_database(root: MySqlConfig, name: str) -> None:
    connection = MySqlDatabase(root).raw_connection(database=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def accounts() -> Iterator[Accounts]:
    """fp_grants_<random> with grants.sql applied as an operator would, in its three steps."""
    name = f"fp_grants_{secrets.token_hex(4)}"
    root = mysql_base_config(name)
    try:
        connection = MySqlDatabase(root).raw_connection(database=False)
    except StorageUnavailable as error:
        if mysql_required():
            pytest.fail(f"MySQL is required (FLAMEPAY_REQUIRE_MYSQL=1) but {error}")
        pytest.skip(f"MySQL not available: {error} (set FLAMEPAY_TEST_MYSQL_URL)")
    suffix, password = secrets.token_hex(3), secrets.token_urlsafe(18)
    with connection.cursor() as cursor:
        cursor.execute("SELECT USER()")
        host = cursor.fetchone()[0].rsplit("@", 1)[1]
    try:
        found = Accounts(
            name,
            host,
            suffix,
            password,
            root,
            *(
                MySqlConfig(
                    host=root.host,
                    port=root.port,
                    user=f"{user}_{suffix}",
                    password=password,
                    database=name,
                )
                for user in ("flamepay", "flamepay_migrate", "flamepay_ro")
            ),
        )
        sql = render_grants(name, suffix, host, password)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        # 1. the migration and read-only accounts; 2. the schema, as the migration account;
        # 3. the whole file (the application's grants name its tables).
        parts = APPLICATION_PART.split(sql)
        assert len(parts) == 2, "grants.sql needs exactly one application marker"
        first = parts[0]
        assert execute_all(connection, first) == 4
        mysql_ops.migrate(found.migrate, "sandbox")
        assert execute_all(connection, sql) >= 6
        yield found
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            for user in ("flamepay", "flamepay_migrate", "flamepay_ro"):
                cursor.execute(f"DROP USER IF EXISTS '{user}_{suffix}'@'{host}'")
        connection.close()


@pytest.fixture(scope="module")
def books(accounts: Accounts) -> Accounts:
    """The application's use cases, run as the application account."""
    database = MySqlDatabase(accounts.app)
    try:
        write_books(make_core(database))
    finally:
        database.close()
    return accounts


def _tables_in_code() -> dict[str, set[str]]:
    """What the application's SQL does to each table, read from adapters/ (not migrations)."""
    sources = [
        p
        for p in (ROOT / "adapters" / "sql").glob("*.py")
        if p.name not in ("migrate.py", "ledger_check.py")
    ]
    sources.append(ROOT / "adapters" / "installation.py")
    code = "\n".join(p.read_text() for p in sources)
    assert not re.search(r"\b(DELETE|TRUNCATE|DROP|REPLACE)\b", code), "the app deletes rows"
    needs: dict[str, set[str]] = {}
    for privileges, pattern in (
        ({"SELECT"}, r"\b(?:FROM|JOIN)\s+([a-z_]+)\b"),
        ({"INSERT"}, r"\bINTO\s+([a-z_]+)\b"),
        # An UPDATE reads the columns of its WHERE (and SET x = x + 1): SELECT as well.
        ({"UPDATE", "SELECT"}, r"\bUPDATE\s+([a-z_]+)\s+SET\b"),
    ):
        for table in re.findall(pattern, code):
            needs.setdefault(table, set()).update(privileges)
    return needs


@pytest.mark.mysql
def test_grants_are_exactly_what_the_code_needs(accounts: Accounts) -> None:
    root, schema = accounts.root, accounts.database
    tables = {r[0] for r in query(root, "SHOW TABLES")}
    granted: dict[str, set[str]] = {}
    for table, privilege in query(
        root,
        "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
        "WHERE GRANTEE = %s AND TABLE_SCHEMA = %s",
        (accounts.grantee(accounts.app), schema),
    ):
        granted.setdefault(table, set()).add(privilege)
    # Every table is granted: a new table needs its line in grants.sql. schema_migrations is
    # only read (by `flamepay run`'s start-up check; its rows are written by the migrator).
    assert set(granted) == tables
    assert granted.pop("schema_migrations") == {"SELECT"}
    needs = {t: p for t, p in _tables_in_code().items() if t in tables and t != "schema_migrations"}
    assert granted == needs
    assert not any({"DELETE", "DROP", "ALTER"} & p for p in granted.values())
    for append_only in ("journals", "ledger_entries", "audit_log", "callback_events"):
        assert "UPDATE" not in granted[append_only], append_only

    def schema_privileges(config: MySqlConfig) -> set[str]:
        return {
            r[0]
            for r in query(
                root,
                "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
                "WHERE GRANTEE = %s AND TABLE_SCHEMA = %s",
                (accounts.grantee(config), schema),
            )
        }

    def global_privileges(config: MySqlConfig) -> set[str]:
        return {
            r[0]
            for r in query(
                root,
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
                (accounts.grantee(config),),
            )
        }

    assert schema_privileges(accounts.app) == set()
    assert schema_privileges(accounts.migrate) == {
        "SELECT",
        "INSERT",
        "UPDATE",
        "CREATE",
        "ALTER",
        "INDEX",
        "REFERENCES",
    }
    assert schema_privileges(accounts.ro) == {"SELECT", "LOCK TABLES", "SHOW VIEW"}
    for config in (accounts.app, accounts.migrate, accounts.ro):
        assert global_privileges(config) == {"USAGE"}, config.user


@pytest.mark.mysql
def test_app_account_runs_the_books(books: Accounts) -> None:
    database = MySqlDatabase(books.app)
    try:
        assert read_installation(database).kind == "sandbox"  # what start-up reads
    finally:
        database.close()
    # Every table the application writes got its rows through the application account.
    empty = [
        table
        for (table,) in query(books.root, "SHOW TABLES")
        if table != "schema_migrations"
        and not query(books.root, f"SELECT COUNT(*) FROM `{table}`")[0][0]
    ]
    assert not empty
    # And the books it wrote are sound (checked with the read-only account).
    out = io.StringIO()
    assert mysql_ops.check_ledger(books.ro, out) == 0, out.getvalue()


APP_REFUSED = (
    "DELETE FROM journals",
    "DELETE FROM orders WHERE id = 1",
    "DELETE FROM outbox",
    "UPDATE journals SET memo = 'rewritten'",
    "UPDATE ledger_entries SET amount = amount + 1",
    "SELECT COUNT(*) FROM audit_log",
    "UPDATE installation SET kind = 'live'",
    "INSERT INTO installation (id, kind, created_at) VALUES (2, 'live', NOW())",
    "DROP TABLE journals",
    "TRUNCATE TABLE journals",
    "ALTER TABLE orders ADD COLUMN evil INT",
    "CREATE TABLE evil (id INT)",
    "INSERT INTO schema_migrations VALUES ('9999_x', 'x', NOW())",
)


@pytest.mark.mysql
@pytest.mark.parametrize("sql", APP_REFUSED)
def test_app_account_cannot_delete_or_change_the_schema(books: Accounts, sql: str) -> None:
    assert refused(books.app, sql) == 1142  # command denied to user for table


@pytest.mark.mysql
def test_app_account_cannot_touch_other_databases(accounts: Accounts) -> None:
    assert refused(accounts.app, f"CREATE DATABASE `{accounts.database}_evil`") == 1044
    assert refused(accounts.app, f"DROP DATABASE `{accounts.database}`") == 1044


@pytest.mark.mysql
def test_migration_account_migrates_but_deletes_nothing(books: Accounts) -> None:
    again = mysql_ops.migrate(books.migrate, "sandbox")
    assert again.applied == () and "0001_core" in again.already
    assert refused(books.migrate, "DELETE FROM journals") == 1142
    assert refused(books.migrate, "DROP TABLE journals") == 1142


@pytest.mark.mysql
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO audit_log (actor, action, target, details, at) "
        "VALUES ('x', 'x', 'x', '{}', NOW())",
        "UPDATE accounts SET balance = balance + 1",
        "DELETE FROM journals",
        "CREATE TABLE evil (id INT)",
        "DROP TABLE journals",
    ],
)
def test_read_only_account_cannot_write(books: Accounts, sql: str) -> None:
    assert query(books.ro, "SELECT COUNT(*) FROM journals")[0][0] >= 3
    assert refused(books.ro, sql) == 1142


def cli_env(config: MySqlConfig, **extra: str) -> dict[str, str]:
    """The environment of a `flamepay` command as `config`'s account (sandbox installation)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return {
        **env,
        "PROVIDER_BASE_URL": "sandbox",
        "BOT_TOKEN": "",
        "ADMIN_IDS": "1",
        "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
        "MYSQL_HOST": config.host,
        "MYSQL_PORT": str(config.port),
        "MYSQL_USER": config.user,
        "MYSQL_PASSWORD": config.password,
        "MYSQL_DATABASE": config.database,
        **extra,
    }


@pytest.mark.mysql
def test_ledger_check_command_runs_as_the_read_only_account(books: Accounts) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints", "ledger-check"],
        env=cli_env(books.ro),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.mysql
def test_split_services_run_with_the_app_account(books: Accounts, tmp_path: Path) -> None:
    """flamepay-web.service and flamepay-jobs.service's commands, as the application account:
    they start, serve and sweep, and exit 0 on SIGTERM."""
    import httpx

    port = free_port()
    (tmp_path / "metrics").mkdir()
    env = cli_env(
        books.app,
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "jobs")}
    commands = {"web": ["web", "--workers", "2"], "jobs": ["jobs"]}
    processes = {}
    handles = []
    try:
        for name, command in commands.items():
            handles.append(logs[name].open("w"))
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "entrypoints", *command],
                env=env,
                cwd=ROOT,
                stdout=handles[-1],
                stderr=subprocess.STDOUT,
            )

        def wait_for(check, what: str) -> None:
            deadline = time.monotonic() + 60
            while not check():
                for name, process in processes.items():
                    assert process.poll() is None, f"{name} exited: {logs[name].read_text()}"
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.1)

        def healthy() -> bool:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and answer.json()["database"] == "ok"

        wait_for(healthy, "/healthz")
        events = "SELECT COUNT(*) FROM callback_events WHERE remote = '127.0.0.1'"
        before = query(books.root, events)[0][0]
        # An unsigned notify: refused, and recorded through the application account.
        answer = httpx.post(f"http://127.0.0.1:{port}/notify", content=b"mchNo=M1", timeout=10)
        assert answer.status_code in (400, 401), answer.text
        assert query(books.root, events)[0][0] == before + 1
        wait_for(lambda: "jobs asked=" in logs["jobs"].read_text(), "a jobs pass")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(30) for name, process in processes.items()}
        for handle in handles:
            handle.close()
    output = {name: path.read_text() for name, path in logs.items()}
    assert codes == {"web": 0, "jobs": 0}, output
    assert not any("Traceback" in text for text in output.values()), output


@pytest.mark.mysql
def test_app_account_starts_on_an_up_to_date_schema_but_cannot_migrate(accounts) -> None:
    """What `flamepay run` does first: with nothing pending the application account only
    reads; with a migration pending it stops with one clear line, changing nothing."""
    report = mysql_ops.migrate(accounts.app, "sandbox")
    assert report.applied == () and report.installation.kind == "sandbox"
    connection = MySqlDatabase(accounts.root).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM schema_migrations WHERE name = '0004_sweep_index'")
            cursor.execute("DROP INDEX orders_sweep ON orders")
        connection.commit()
        with pytest.raises(MigrationError, match="run `flamepay migrate` with the migration"):
            mysql_ops.migrate(accounts.app, "sandbox")
        assert mysql_ops.migrate(accounts.migrate, "sandbox").applied == ("0004_sweep_index",)
    finally:
        connection.close()
    for sql_refused in (
        "DELETE FROM journals",
        "DROP TABLE journals",
        "ALTER TABLE orders ADD COLUMN evil INT",
        "UPDATE ledger_entries SET amount = 0",
    ):
        assert refused(accounts.app, sql_refused) == 1142, sql_refused


def option_file(path: Path, config: MySqlConfig, password: str | None = None) -> Path:
    path.write_text(
        "[client]\n"
        f"user={config.user}\npassword={config.password if password is None else password}\n"
        f"host={config.host}\nport={config.port}\n"
    )
    path.chmod(0o600)
    return path


def need(*programs: str) -> str:
    for program in programs:
        if shutil.which(program):
            return program
    pytest.skip(f"{' or '.join(programs)} is not installed")


@pytest.mark.mysql
def test_mysql_backup_dumps_and_the_dump_restores(books: Accounts, tmp_path: Path) -> None:
    need("mysqldump", "mariadb-dump")
    client = need("mysql", "mariadb")
    backups = tmp_path / "backups"
    backups.mkdir()
    name = books.database
    old = age(backups / f"flamepay-{name}-20200101-000000.sql.gz", 15)
    recent = age(backups / f"flamepay-{name}-20200103-000000.sql.gz", 13)
    other = age(backups / "flamepay-otherdb-20200101-000000.sql.gz", 30)
    defaults = option_file(tmp_path / "backup.cnf", books.ro)

    result = run_script(
        MYSQL_BACKUP,
        "14",
        BACKUP_DIR=str(backups),
        MYSQL_DEFAULTS_FILE=str(defaults),
        MYSQL_DATABASE=name,
    )
    assert result.returncode == 0, result.stderr
    assert books.password not in result.stdout + result.stderr
    assert not old.exists() and recent.exists() and other.exists()
    [dump] = set(backups.glob(f"flamepay-{name}-*.sql.gz")) - {recent}
    assert stat.S_IMODE(dump.stat().st_mode) & 0o077 == 0
    assert not list(backups.glob(".*partial"))
    text = gzip.decompress(dump.read_bytes()).decode()
    assert "CREATE TABLE `journals`" in text
    assert "INSERT INTO `journals`" in text
    assert text.rstrip().splitlines()[-1].startswith("-- Dump completed")
    assert "CREATE DATABASE" not in text and "\nUSE " not in text  # restorable under any name

    # RESTORE.md steps 3-6: a new database, the grants, migrate, ledger-check.
    restored = f"{name}_r"
    root_defaults = option_file(tmp_path / "root.cnf", books.root)
    try:
        query(
            books.root,
            f"CREATE DATABASE `{restored}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
        loaded = subprocess.run(
            [client, f"--defaults-extra-file={root_defaults}", restored],
            input=text,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert loaded.returncode == 0, loaded.stderr
        connection = MySqlDatabase(books.root).raw_connection(database=False)
        try:
            execute_all(
                connection, render_grants(restored, books.suffix, books.host, books.password)
            )
        finally:
            connection.close()
        migrate = MySqlConfig(
            host=books.migrate.host,
            port=books.migrate.port,
            user=books.migrate.user,
            password=books.password,
            database=restored,
        )
        assert mysql_ops.migrate(migrate, "sandbox").applied == ()
        ro = MySqlConfig(
            host=books.ro.host,
            port=books.ro.port,
            user=books.ro.user,
            password=books.password,
            database=restored,
        )
        out = io.StringIO()
        assert mysql_ops.check_ledger(ro, out) == 0, out.getvalue()
        for (table,) in query(books.root, "SHOW TABLES"):
            count = f"SELECT COUNT(*) FROM `{table}`"
            assert query(books.root, count) == query(ro, count), table
    finally:
        drop_database(books.root, restored)


@pytest.mark.mysql
def test_mysql_backup_fails_loudly_and_deletes_nothing(accounts: Accounts, tmp_path: Path) -> None:
    need("mysqldump", "mariadb-dump")
    backups = tmp_path / "backups"
    backups.mkdir()
    old = age(backups / f"flamepay-{accounts.database}-20200101-000000.sql.gz", 30)
    good = option_file(tmp_path / "good.cnf", accounts.ro)
    cases = {
        "wrong password": dict(
            MYSQL_DEFAULTS_FILE=str(option_file(tmp_path / "bad.cnf", accounts.ro, "wrong")),
            MYSQL_DATABASE=accounts.database,
        ),
        "no such database": dict(MYSQL_DEFAULTS_FILE=str(good), MYSQL_DATABASE="fp_no_such_db"),
        "no option file": dict(
            MYSQL_DEFAULTS_FILE=str(tmp_path / "missing.cnf"), MYSQL_DATABASE=accounts.database
        ),
        "bad database name": dict(MYSQL_DEFAULTS_FILE=str(good), MYSQL_DATABASE="x; rm -rf /"),
    }
    for case, env in cases.items():
        result = run_script(MYSQL_BACKUP, "14", BACKUP_DIR=str(backups), **env)
        assert result.returncode != 0, case
        assert "mysql-backup:" in result.stderr, case
        assert sorted(backups.iterdir()) == [old], case  # nothing written, nothing pruned
