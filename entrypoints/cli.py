"""The `flamepay` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from flamepay import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flamepay",
        description="FlamePay: Telegram payment bot and provider-callback service.",
        epilog="Settings come from .env and the environment; see .env.example.",
    )
    parser.add_argument("--version", action="version", version=f"flamepay {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("version", help="print the version")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("ledger-check", help="prove the books with independent SQL aggregates")
    commands.add_parser("check-settings", help="check .env and the environment, then exit")
    commands.add_parser("run", help="start everything: callback app, bot, jobs (and sandbox)")
    commands.add_parser("jobs", help="reconciliation and expiry only (several may run)")
    reconcile = commands.add_parser("reconcile", help="ask the gateway about orders")
    reconcile.add_argument("number", nargs="?", help="a merchant order number")
    reconcile.add_argument("--stale", action="store_true", help="one pass of the sweeps")
    gencode = commands.add_parser("gencode", help="make access codes")
    gencode.add_argument("--uses", type=int, default=1)
    gencode.add_argument("--expires", help="YYYY-MM-DD")
    gencode.add_argument("--count", type=int, default=1)
    commands.add_parser("demo", help="the whole story offline, no token and no server needed")
    sandbox = commands.add_parser("sandbox", help="run the local sandbox gateway")
    sandbox.add_argument("--host", help="loopback address to bind (default SANDBOX_HOST)")
    sandbox.add_argument("--port", type=int, help="port (default SANDBOX_PORT)")
    commands.add_parser("bot", help="run the Telegram bot (polling) and send the outbox")
    web = commands.add_parser("web", help="run the provider callback service (/notify)")
    web.add_argument("--workers", type=int, default=1, help="worker processes on one port")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from entrypoints import commands

    handlers: dict[str, Callable[[], int]] = {
        "sandbox": lambda: commands.sandbox(args.host, args.port),
        "web": lambda: commands.web(args.workers),
        "bot": commands.bot,
        "version": lambda: print(f"flamepay {__version__}") or 0,
        "migrate": commands.migrate,
        "ledger-check": commands.ledger_check,
        "check-settings": commands.check_settings,
        "run": commands.run_all,
        "jobs": commands.jobs,
        "reconcile": lambda: commands.reconcile(args.number, args.stale),
        "gencode": lambda: commands.gencode(args.uses, args.expires, args.count),
        "demo": commands.demo,
    }
    return handlers[args.command]()
