"""/export: the ledger as CSV, in cells a spreadsheet will not run."""

from __future__ import annotations

import csv
import io

from flamepay.admin_queues import export_ledger
from flamepay.money import format_amount

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A text cell a spreadsheet will not run: '=', '+', '-', '@', tab or CR get a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def ledger_csv(core, admin_id: int) -> bytes:
    """Every entry (amounts in currency units); database work: run it off the event loop."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry", "at", "journal", "kind", "account", "amount", "memo"])
    for line in export_ledger(core, admin_id):
        writer.writerow(
            [
                line.id,
                f"{line.at:%Y-%m-%d %H:%M:%S}",
                safe_cell(line.journal_key),
                safe_cell(line.kind.value),
                safe_cell(line.account),
                format_amount(line.amount),
                safe_cell(line.memo),
            ]
        )
    return out.getvalue().encode("utf-8")
