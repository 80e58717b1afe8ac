"""`flamepay demo`: the whole story offline in seconds, with no token and no server.

A temporary SQLite file, the sandbox gateway, the callback app and the real bot (built by the
composition root) against the Bot API emulator, all on loopback. A scripted admin sets up a
package and a code; a scripted user activates, pays 100.00 on the cashier page, is credited
85.00, and asks for a 50.00 payout that the admin approves. The conversation is printed as a
transcript, then the final balances and the ledger check.
"""

from __future__ import annotations

import io
import logging
import sys
import tempfile
from pathlib import Path

import httpx

from adapters import sqlite
from flamepay import ledger
from simulators.local import start_local
from simulators.telegram import BotApiEmulator

ADMIN, USER = 1001, 2002
DEMO_TOKEN = "123456789:DEMO-token-used-only-with-the-local-emulator"
ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


class Script:
    def __init__(self, emulator: BotApiEmulator, out) -> None:
        self.emulator = emulator
        self.out = out

    def say(self, who: int, text: str, expect: str):
        name = "admin" if who == ADMIN else "user"
        print(f"{name}> {text}", file=self.out)
        last = max((m.message_id for m in self.emulator.messages(who)), default=0)
        self.emulator.send_message(who, text, first_name=name.title())
        reply = self.emulator.wait_for(
            lambda m: m.chat_id == who and m.message_id > last and expect in m.plain_text,
            timeout=30,
        )
        self.show(reply)
        return reply

    def press(self, who: int, message, label: str, expect: str):
        name = "admin" if who == ADMIN else "user"
        data = next(d for text, d in message.buttons() if label in text)
        print(f"{name}> [presses {label}]", file=self.out)
        last = max((m.message_id for m in self.emulator.messages(who)), default=0)
        self.emulator.press_button(who, message.message_id, data)
        reply = self.emulator.wait_for(
            lambda m: m.chat_id == who and m.message_id > last and expect in m.plain_text,
            timeout=30,
        )
        self.show(reply)
        return reply

    def wait(self, who: int, expect: str):
        reply = self.emulator.wait_for(
            lambda m: m.chat_id == who and expect in m.plain_text, timeout=30
        )
        self.show(reply)
        return reply

    def show(self, message) -> None:
        for line in message.plain_text.splitlines():
            print(f"  bot: {line}", file=self.out)


def run_demo(out=None) -> int:
    out = out or sys.stdout
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="flamepay-demo-") as folder:
        path = Path(folder) / "demo.sqlite3"
        sqlite.migrate(path, "sandbox")
        local = start_local(
            DEMO_TOKEN,
            {
                "ADMIN_IDS": str(ADMIN),
                "PROVIDER_BASE_URL": "sandbox",
                "SQLITE_PATH": str(path),
                "LOG_LEVEL": "WARNING",
            },
        )
        try:
            return _story(local, path, out)
        finally:
            local.close()


def _story(local, path: Path, out) -> int:
    app, emulator = local.app, local.emulator
    print("FlamePay demo: a sandbox installation on a temporary SQLite file.\n", file=out)
    s = Script(emulator, out)
    codes = s.say(ADMIN, "/gencode 1", "code(s)")
    code = codes.plain_text.splitlines()[-1].strip()
    s.say(ADMIN, "/gateway ALI_QR Alipay on", "is on")
    s.say(ADMIN, "/package_add ALI_QR Basic 100", "added")
    s.say(USER, "/start", "Welcome")
    s.say(USER, f"/activate {code}", "Activated")
    choose = s.say(USER, "/pay", "Choose an amount")
    card = s.press(USER, choose, "100.00 USD", "To be credited")
    cashier = next(
        line.split("Pay here: ", 1)[1]
        for line in card.plain_text.splitlines()
        if line.startswith("Pay here: ")
    )
    print(f"user> [pays 100.00 on the sandbox cashier page {cashier}]", file=out)
    httpx.post(f"{cashier}/pay", data={"real_amount": "100.00"}, follow_redirects=True)
    s.wait(USER, "85.00 USD credited")
    s.say(USER, "/balance", "Available")
    s.say(USER, f"/payoutrequest 50 TRC20 {ADDRESS}", "Payout #")
    request = s.wait(ADMIN, "requested by user")
    confirm = s.press(ADMIN, request, "Approve", "Approve payout")
    s.press(ADMIN, confirm, "Yes, approve", "approved")
    s.wait(USER, "was approved")
    final = s.say(USER, "/balance", "Available")

    with app.core.uow() as uow:
        available = uow.ledger.balance(ledger.available(USER))
        held = uow.ledger.balance(ledger.held(USER))
    check = io.StringIO()
    clean = sqlite.check_ledger(path, check) == 0
    print("\nFinal balances:", file=out)
    print(
        f"  user {USER}: available {available / 100:.2f} USD, on hold {held / 100:.2f} USD",
        file=out,
    )
    print(f"  ledger-check: {'clean' if clean else 'FAILED'}", file=out)
    ok = clean and available == 3500 and held == 0 and "Available: 35.00 USD" in final.plain_text
    return 0 if ok else 1
