"""The `flamepay` command. Subcommands arrive with the issues that build them."""

from __future__ import annotations

import argparse
import sys

from flamepay import __version__

# What later issues add; named here so `--help` tells an operator what is coming.
PLANNED = (
    "migrate",
    "run",
    "bot",
    "web",
    "sandbox",
    "reconcile",
    "jobs",
    "ledger-check",
    "gencode",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flamepay",
        description="FlamePay: Telegram payment bot and provider-callback service.",
        epilog="Not yet built in this version: " + ", ".join(PLANNED) + ".",
    )
    parser.add_argument("--version", action="version", version=f"flamepay {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("version", help="print the version")
    commands.add_parser("run", help="start FlamePay (not complete in this version)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"flamepay {__version__}")
        return 0
    if args.command == "run":
        # Said plainly rather than half-started: the pieces below arrive with later issues.
        print(
            "flamepay run cannot start yet: this version has the payment core only. Missing: "
            "settings checks, the SQLite/MySQL storage, the provider client, the sandbox "
            "gateway, the callback service and the Telegram bot.",
            file=sys.stderr,
        )
        return 2
    if args.command is None:
        parser.print_help()
        return 0
    return 2  # pragma: no cover - argparse refuses unknown commands before this


if __name__ == "__main__":
    sys.exit(main())
