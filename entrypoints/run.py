"""`flamepay run`: settings checked, migrations applied, then the callback app, the bot, the
jobs and (with PROVIDER_BASE_URL=sandbox) the sandbox, in one event loop. SIGINT/SIGTERM
finish in-flight notifies and updates, then exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from hypercorn.asyncio import serve

from entrypoints.bootstrap import FlamePay
from entrypoints.serving import hypercorn_config

log = logging.getLogger("flamepay.run")


def banner(app: FlamePay) -> str:
    settings = app.settings
    storage = settings.storage
    database = (
        f"MySQL {storage.mysql.host}:{storage.mysql.port}/{storage.mysql.database}"
        if storage.mysql
        else f"SQLite {storage.sqlite_path}"
    )
    policy = app.core.policy
    return (
        f"FlamePay started: {settings.app_env}, {app.installation.kind} installation; "
        f"database {database}; provider {app.provider_base_url} ({settings.provider.dialect}), "
        f"merchant {app.merchant.mch_no}; fee {policy.fee_bp / 100:g}%; currency "
        f"{policy.currency}; callback http://{settings.webhook_host}:{settings.webhook_port}"
    )


async def run_everything(app: FlamePay, stop: asyncio.Event) -> None:
    from entrypoints.bot.application import BotRuntime
    from entrypoints.jobs import Jobs
    from entrypoints.web import build_web_app
    from simulators.sandbox import Sandbox, build_app, sandbox_config

    settings = app.settings
    servers = []
    web_config = hypercorn_config(settings.webhook_host, settings.webhook_port)
    web_app = build_web_app(app)
    web = serve(web_app, web_config, shutdown_trigger=stop.wait)
    servers.append(asyncio.ensure_future(web))
    if app.sandbox:
        host, port = settings.sandbox_host, settings.sandbox_port
        shown = f"[{host}]" if ":" in host else host
        sandbox = Sandbox(sandbox_config(app, f"http://{shown}:{port}"))
        gateway = serve(
            build_app(sandbox), hypercorn_config(host, port), shutdown_trigger=stop.wait
        )
        servers.append(asyncio.ensure_future(gateway))
    bot = BotRuntime(app)
    await bot.start()
    jobs = asyncio.ensure_future(Jobs(app).run_forever())
    text = banner(app)
    print(text, flush=True)
    log.info("started %s", text)
    for admin_id in sorted(settings.admin_ids):
        with contextlib.suppress(Exception):
            await bot.application.bot.send_message(admin_id, bot.handlers.prefixed(text))
    await stop.wait()
    log.info("stopping: finishing in-flight updates and notifies")
    jobs.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await jobs
    await bot.stop()  # waits for the updates being handled
    await asyncio.gather(*servers, return_exceptions=True)  # graceful: in-flight requests end


def run(app: FlamePay) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_everything(app, stop)

    try:
        asyncio.run(main())
    finally:
        app.close()
    print("FlamePay stopped.", file=sys.stderr, flush=True)
    return 0
