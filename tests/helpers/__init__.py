"""What the tests share: worlds on the in-memory adapters (support, core_checks), the
databases (dbs), the callback app and the bot on loopback (web_support, bot_support), the
race tool (threads) and the browser driver (browser). One home each, imported by every level
of tests (unit, integration, e2e)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
DATA = ROOT / "tests" / "data"
