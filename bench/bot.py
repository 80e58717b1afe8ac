"""Bot throughput: 200 distinct activated users with balances send /balance through the
Telegram Bot API emulator to the real bot (composition root, MariaDB); updates per second and
p50/p99 from update to reply, beside the emulator's own echo throughput (a PTB application
that answers each update with no work at all).

    .venv/bin/python -m bench.bot [--users 200] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from adapters import mysql_ops
from bench.common import bench_mysql, machine, replace_section, server_variable, summary
from entrypoints.serving import serving
from flamepay.activate_user import activate_user
from flamepay.adjust_balance import adjust_balance
from flamepay.generate_codes import generate_codes
from flamepay.see_user import see_user
from simulators.telegram import BotApiEmulator
from tests.helpers.bot_support import ADMIN, start_product
from tests.helpers.dbs import wipe_mysql
from tests.helpers.web_support import TOKEN

FIRST_USER = 10_000


def measure(emulator: BotApiEmulator, users: list[int], text: str, done: str) -> dict:
    """Send `text` from every user at once; time each until the bot's reply shows `done`."""
    before = {u: max((m.message_id for m in emulator.messages(u)), default=0) for u in users}
    sent_at: dict[int, float] = {}
    latencies: dict[int, float] = {}
    start = time.perf_counter()
    for user in users:
        sent_at[user] = time.perf_counter()
        emulator.send_message(user, text)
    deadline = time.monotonic() + 120
    while len(latencies) < len(users) and time.monotonic() < deadline:
        now = time.perf_counter()
        for message in emulator.messages():
            user = message.chat_id
            if (
                user in sent_at
                and user not in latencies
                and message.message_id > before.get(user, 0)
                and done in message.text
            ):
                latencies[user] = now - sent_at[user]
        time.sleep(0.001)
    if len(latencies) < len(users):
        raise SystemExit(f"only {len(latencies)} of {len(users)} replies arrived")
    elapsed = max(sent_at[u] + latencies[u] for u in users) - start
    return summary(list(latencies.values()), elapsed)


def bot_run(users: int) -> dict:
    config = bench_mysql("fp_bench_bot")
    mysql_ops.migrate(config, "sandbox")
    wipe_mysql(config)
    product = start_product(config, LOG_LEVEL="WARNING", MYSQL_POOL_SIZE="5")
    try:
        core = product.app.core
        ids = list(range(FIRST_USER, FIRST_USER + users))
        code = generate_codes(core, ADMIN, uses=users)[0].code
        for user in ids:
            see_user(core, user, f"u{user}", "Bench")
            activate_user(core, user, code)
            adjust_balance(core, ADMIN, user, 10_000, "bench balance")
        measure(product.emulator, ids[:20], "/balance", "Available:")  # warm-up
        return measure(product.emulator, ids, "/balance", "Available:")
    finally:
        product.close()


def echo_run(users: int) -> dict:
    emulator = BotApiEmulator(TOKEN)
    with serving(emulator.app) as url:
        application = (
            Application.builder()
            .token(TOKEN)
            .base_url(f"{url}/bot")
            .concurrent_updates(True)
            .build()
        )

        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await update.effective_message.reply_text("echo")

        application.add_handler(MessageHandler(filters.ALL, echo))
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def run() -> None:
            await application.initialize()
            await application.start()
            await application.updater.start_polling(poll_interval=0.0, timeout=1)
            ready.set()

        thread = threading.Thread(
            target=lambda: (loop.run_until_complete(run()), loop.run_forever())
        )
        thread.start()
        ready.wait(30)
        try:
            ids = list(range(FIRST_USER, FIRST_USER + users))
            measure(emulator, ids[:20], "/balance", "echo")
            return measure(emulator, ids, "/balance", "echo")
        finally:

            async def stop() -> None:
                await application.updater.stop()
                await application.stop()
                await application.shutdown()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--write", help="update this markdown file's bot section")
    args = parser.parse_args(argv)
    echo = echo_run(args.users)
    print(f"echo: {echo}", flush=True)
    bot = bot_run(args.users)
    print(f"bot: {bot}", flush=True)
    version = server_variable(bench_mysql("fp_bench_bot"), "version")
    text = "\n".join(
        [
            "## Bot throughput (`bench/bot.py`)",
            "",
            f"Command: `.venv/bin/python -m bench.bot --users {args.users}`. Machine: {machine()}. "
            f"MariaDB {version}. {args.users} distinct activated users with balances each send "
            "`/balance` at once through the Bot API emulator (loopback, long polling); latency is "
            "from queueing the update to seeing the bot's reply at the emulator. The echo row is a "
            "PTB application that answers every update with no work, through the same emulator.",
            "",
            "| run | updates/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
            f"| emulator echo (no work) | {echo['rps']:.0f} | {echo['p50_ms']:.0f} | "
            f"{echo['p99_ms']:.0f} |",
            f"| FlamePay `/balance` | {bot['rps']:.0f} | {bot['p50_ms']:.0f} | "
            f"{bot['p99_ms']:.0f} |",
            "",
            f"The bot answers at {bot['rps'] / echo['rps']:.2f} of the echo rate: each `/balance` "
            "is two short transactions (recording the user, reading three balances) run in the "
            "executor beside the PTB event loop, on the same two cores as the emulator and "
            "MariaDB.",
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, "bench-bot", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
