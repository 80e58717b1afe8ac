"""What the `flamepay` subcommands do; each returns the process exit code."""

from __future__ import annotations

import contextlib
import sys

from adapters import mysql_ops, sqlite
from adapters.sql.migrate import MigrationError
from entrypoints.settings import Settings, SettingsError, gather, load_settings
from flamepay.errors import Refused, StorageUnavailable

SETTINGS_EXIT = 2


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return SETTINGS_EXIT


def _settings(need_bot: bool) -> Settings:
    return load_settings(gather(), need_bot=need_bot)


def check_settings() -> int:
    try:
        settings = _settings(need_bot=True)
    except SettingsError as error:
        return _fail(error.problems)
    storage = settings.storage
    where = (
        f"MySQL {storage.mysql.host}:{storage.mysql.port}/{storage.mysql.database}"
        if storage.mysql
        else f"SQLite {storage.sqlite_path}"
    )
    print(
        f"settings ok: {settings.app_env}, {settings.installation_kind} installation, {where}, "
        f"fee {settings.policy.fee_bp / 100:g}%, {len(settings.admin_ids)} admin(s)"
    )
    return 0


def migrate() -> int:
    try:
        settings = _settings(need_bot=False)
        storage = settings.storage
        if storage.mysql is not None:
            result = mysql_ops.migrate(storage.mysql, settings.installation_kind)
        else:
            result = sqlite.migrate(storage.sqlite_path, settings.installation_kind)
    except SettingsError as error:
        return _fail(error.problems)
    except (MigrationError, StorageUnavailable) as error:
        return _fail([f"migrate: {error}"])
    for name in result.applied:
        print(f"applied {name}")
    print(
        f"migrate: {len(result.applied)} applied, {len(result.already)} already there; "
        f"{result.installation.kind} installation"
    )
    return 0


def ledger_check() -> int:
    try:
        storage = _settings(need_bot=False).storage
        if storage.mysql is not None:
            return mysql_ops.check_ledger(storage.mysql, sys.stdout)
        return sqlite.check_ledger(storage.sqlite_path, sys.stdout)
    except SettingsError as error:
        return _fail(error.problems)
    except StorageUnavailable as error:
        return _fail([f"ledger-check: {error}"])


def _startup(need_bot: bool, logs: bool = False):
    """Settings, then the composition root; (app, None) or (None, exit code).

    `logs`: a long-running command (run, web, bot, jobs, sandbox) sets up the logging of
    `flamepay run`: LOG_LEVEL, one line per event, every secret redacted. Without it the
    root logger has no handler: INFO lines (notify result=...) are lost and what Python's
    last-resort handler prints is not redacted.
    """
    from entrypoints.bootstrap import StartupError, build
    from entrypoints.logs import configure_app_logging, configure_logging

    try:
        settings = _settings(need_bot=need_bot)
        if logs:
            configure_logging(settings.log_level, settings.secrets())
        app = build(settings)
    except SettingsError as error:
        return None, _fail(error.problems)
    except (StartupError, StorageUnavailable) as error:
        return None, _fail([str(error)])
    if logs:
        configure_app_logging(app)  # again, now that the sandbox's generated key is known
    notice = previous_key_notice(app)
    if notice is not None:
        print(notice, file=sys.stderr if notice.startswith("warning:") else sys.stdout, flush=True)
    return app, None


def previous_key_notice(app) -> str | None:
    """One line about PROVIDER_KEY_PREVIOUS_UNTIL for start-up, naming the setting and the
    date, never the key; None without an end date."""
    provider = app.settings.provider
    until = provider.key_previous_until
    if not provider.key_previous or until is None:
        return None
    if provider.previous_key_in_force(app.core.now()):
        return f"PROVIDER_KEY_PREVIOUS is accepted on notifies until the end of {until} (UTC)"
    return (
        f"warning: PROVIDER_KEY_PREVIOUS_UNTIL {until} has passed: notifies signed with "
        "PROVIDER_KEY_PREVIOUS are refused; remove PROVIDER_KEY_PREVIOUS"
    )


def sandbox(host: str | None, port: int | None) -> int:
    import asyncio

    from hypercorn.asyncio import serve

    from entrypoints.serving import hypercorn_config
    from entrypoints.settings import is_loopback
    from simulators.sandbox import Sandbox, build_app, sandbox_config

    app, code = _startup(need_bot=False, logs=True)
    if app is None:
        return code
    host = host or app.settings.sandbox_host
    port = port or app.settings.sandbox_port
    if not is_loopback(host):
        return _fail(
            [
                f"sandbox: --host {host[:60]} is not a loopback address; the sandbox "
                "binds to 127.0.0.1 only"
            ]
        )
    if not app.sandbox:
        return _fail(["sandbox: this is a live installation (PROVIDER_BASE_URL is not sandbox)"])
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address needs brackets in a URL
    config = sandbox_config(app, f"http://{shown}:{port}")
    app.close()
    print(f"sandbox gateway on http://{shown}:{port} (merchant {config.mch_no})")
    asyncio.run(serve(build_app(Sandbox(config)), hypercorn_config(host, port)))
    return 0


def web(workers: int) -> int:
    import os
    import tempfile

    from hypercorn.run import run as hypercorn_run

    from entrypoints.serving import hypercorn_config

    # Logging here for this process; each worker process sets up its own in create_app().
    app, code = _startup(need_bot=False, logs=True)
    if app is None:
        return code
    settings = app.settings
    app.close()  # checked; each worker builds its own
    config = hypercorn_config(settings.webhook_host, settings.webhook_port)
    config.application_path = "entrypoints.web:create_app()"
    # One worker runs in this process (signals reach it directly); more are child processes.
    config.workers = workers if workers > 1 else 0
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Metrics from every worker process, aggregated by /metrics.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flamepay-metrics-")
    print(
        f"callback service on http://{settings.webhook_host}:{settings.webhook_port} "
        f"({max(1, workers)} worker(s))"
    )
    return hypercorn_run(config)


def bot() -> int:
    """The Telegram bot alone (polling, and the outbox: only the bot's process sends it)."""
    import asyncio
    import signal

    from entrypoints.bot.application import BotRuntime

    app, code = _startup(need_bot=True, logs=True)
    if app is None:
        return code

    async def main() -> None:
        runtime = BotRuntime(app)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start()
        print(f"bot polling ({app.installation.kind} installation)", flush=True)
        await stop.wait()
        await runtime.stop()

    try:
        asyncio.run(main())
    finally:
        app.close()
    return 0


DEMO_HINT = "flamepay demo runs the whole story offline and needs neither."


def run_all() -> int:
    from entrypoints.logs import configure_logging
    from entrypoints.run import run

    try:
        settings = _settings(need_bot=True)
    except SettingsError as error:
        lines = list(error.problems)
        if any(line.startswith(("BOT_TOKEN", "ADMIN_IDS")) for line in lines):
            lines.append(DEMO_HINT)
        return _fail(lines)
    configure_logging(settings.log_level, settings.secrets())
    code = _migrate_with(settings)
    if code:
        return code
    app, code = _startup(need_bot=True, logs=True)
    if app is None:
        return code
    return run(app)


def _migrate_with(settings: Settings) -> int:
    try:
        if settings.storage.mysql is not None:
            mysql_ops.migrate(settings.storage.mysql, settings.installation_kind)
        else:
            sqlite.migrate(settings.storage.sqlite_path, settings.installation_kind)
    except (MigrationError, StorageUnavailable) as error:
        return _fail([f"migrate: {error}"])
    return 0


def jobs() -> int:
    import asyncio

    from entrypoints.jobs import Jobs

    app, code = _startup(need_bot=False, logs=True)
    if app is None:
        return code
    print(f"jobs every {app.settings.reconcile_interval_seconds} s", flush=True)
    try:
        asyncio.run(_until_signal(Jobs(app).run_forever()))
    finally:
        app.close()
    return 0


async def _until_signal(coro) -> None:
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.ensure_future(coro)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def reconcile(number: str | None, stale: bool) -> int:
    from entrypoints.jobs import Jobs
    from flamepay.reconcile_order import reconcile_as

    app, code = _startup(need_bot=False)
    if app is None:
        return code
    try:
        if stale:
            run, expired = Jobs(app).run_once()
            print(
                f"reconcile: asked about {run.asked} order(s), {run.failed_calls} without an "
                f"answer, {expired} expired; {dict(run.outcomes)}"
            )
            return 0
        if not number:
            return _fail(["reconcile: expected an order number or --stale"])
        done = reconcile_as(app.core, "cli", number)
        print(
            f"{done.before.mch_order_no}: state {int(done.before.state)} -> "
            f"{int(done.after.state)} ({done.provider_said})"
        )
        return 0
    except Refused as refusal:
        return _fail([f"reconcile: {refusal}"])
    finally:
        app.close()


def gencode(uses: int, expires: str | None, count: int) -> int:
    from datetime import date

    from flamepay.generate_codes import generate_codes

    app, code = _startup(need_bot=False)
    if app is None:
        return code
    try:
        if not app.settings.admin_ids:
            return _fail(["ADMIN_IDS: codes are made in an admin's name; set ADMIN_IDS"])
        try:
            expires_on = date.fromisoformat(expires) if expires else None
        except ValueError:
            return _fail(["gencode: expected --expires as YYYY-MM-DD"])
        admin = min(app.settings.admin_ids)
        for made in generate_codes(app.core, admin, uses, expires_on, count):
            print(made.code)
        return 0
    except Refused as refusal:
        return _fail([f"gencode: {refusal}"])
    finally:
        app.close()


def demo() -> int:
    from simulators.demo import run_demo

    return run_demo()
