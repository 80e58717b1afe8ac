"""ledger-check: the books proved with independent SQL aggregates.

Nothing here uses the adapter's balance code: each check is one aggregate query whose rows
are violations, read as a stream (a server-side cursor on MySQL), so memory stays flat
however many orders there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

import attrs

from flamepay.ledger import CREDITING_KINDS, payin_key, refund_key
from flamepay.order import PAID_STATES, ReviewFlag

SHOWN_PER_CHECK = 10
# The rules come from the core (which orders were paid, the journal keys, what counts as
# credited); the sums are this module's own SQL.
CREDITED = (
    f"(o.state IN ({', '.join(str(int(s)) for s in sorted(PAID_STATES))}) "
    f"OR o.review = '{ReviewFlag.CREDITED.value}')"
)
CREDITING = ", ".join(f"'{kind.value}'" for kind in CREDITING_KINDS)


def _key_of_order(key: Callable[[str], str], concat: Callable[[str, str], str]) -> str:
    # A key is its prefix followed by the order number: the prefix is the key of "".
    return concat(f"'{key('')}'", "o.mch_order_no")


def checks(concat: Callable[[str, str], str]) -> list[tuple[str, str]]:
    payin_of_order = _key_of_order(payin_key, concat)
    refund_of_order = _key_of_order(refund_key, concat)
    return [
        (
            # Grouping the entries alone, then looking journals up, is one pass over the
            # entries instead of a join per journal (seconds instead of tens at a million).
            "every journal sums to zero and has entries",
            "SELECT t.journal_id, t.total, 1 FROM (SELECT journal_id, SUM(amount) AS total "
            "FROM ledger_entries GROUP BY journal_id) t WHERE t.total <> 0 "
            "UNION ALL "
            "SELECT j.jkey, 0, 0 FROM journals j "
            "WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.journal_id = j.id)",
        ),
        (
            "every balance equals the sum of its entries",
            "SELECT a.name, a.balance, COALESCE(t.total, 0) FROM accounts a "
            "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries "
            "GROUP BY account_id) t ON t.account_id = a.id "
            "WHERE a.balance <> COALESCE(t.total, 0)",
        ),
        (
            "credited in total equals each user's pay-in and refund entries",
            "SELECT a.name, a.credited, COALESCE(t.total, 0) FROM accounts a "
            "LEFT JOIN (SELECT e.account_id, SUM(e.amount) AS total FROM ledger_entries e "
            f"JOIN journals j ON j.id = e.journal_id WHERE j.kind IN ({CREDITING}) "
            "GROUP BY e.account_id) t ON t.account_id = a.id "
            "WHERE a.aclass = 'user:available' AND a.credited <> COALESCE(t.total, 0)",
        ),
        (
            "a payin journal exactly for the orders that were paid or credited by a review",
            f"SELECT o.mch_order_no, o.state, o.review FROM orders o "
            f"LEFT JOIN journals j ON j.jkey = {payin_of_order} "
            f"WHERE ({CREDITED} AND j.id IS NULL) OR (NOT {CREDITED} AND j.id IS NOT NULL)",
        ),
        (
            "every payin journal belongs to an order",
            "SELECT j.jkey, j.order_id FROM journals j LEFT JOIN orders o ON o.id = j.order_id "
            "WHERE j.kind = 'payin' AND o.id IS NULL",
        ),
        (
            "a refund journal only after a payin, and for every refunded order",
            "SELECT j.jkey, o.state FROM journals j JOIN orders o ON o.id = j.order_id "
            f"LEFT JOIN journals p ON p.jkey = {payin_of_order} "
            "WHERE j.kind = 'refund' AND (p.id IS NULL OR o.state <> 5) "
            "UNION ALL "
            "SELECT o.mch_order_no, o.state FROM orders o "
            f"LEFT JOIN journals r ON r.jkey = {refund_of_order} "
            "WHERE o.state = 5 AND r.id IS NULL",
        ),
        (
            "held equals the open payouts of each user",
            "SELECT a.name, a.balance, COALESCE(p.total, 0) FROM accounts a "
            "LEFT JOIN (SELECT user_id, SUM(amount) AS total FROM payouts "
            "WHERE status = 'pending' GROUP BY user_id) p ON p.user_id = a.user_id "
            "WHERE a.aclass = 'user:held' AND a.balance <> COALESCE(p.total, 0) "
            "UNION ALL "
            "SELECT p.user_id, 0, SUM(p.amount) FROM payouts p LEFT JOIN accounts a "
            "ON a.user_id = p.user_id AND a.aclass = 'user:held' "
            "WHERE p.status = 'pending' AND a.id IS NULL GROUP BY p.user_id",
        ),
        (
            "no order under an unresolved review was credited",
            "SELECT o.mch_order_no, o.state FROM orders o "
            f"JOIN journals j ON j.jkey = {payin_of_order} "
            "WHERE o.review = 'pending'",
        ),
    ]


@attrs.frozen
class CheckResult:
    name: str
    violations: int
    examples: tuple[tuple, ...]
    seconds: float = 0.0


def run_checks(
    stream: Callable[[str], Iterator[tuple]], concat: Callable[[str, str], str]
) -> list[CheckResult]:
    results = []
    for name, sql in checks(concat):
        started = time.perf_counter()
        count, examples = 0, []
        for row in stream(sql):
            count += 1
            if len(examples) < SHOWN_PER_CHECK:
                examples.append(tuple(_plain(v) for v in row))
        results.append(CheckResult(name, count, tuple(examples), time.perf_counter() - started))
    return results


def report(results: Iterable[CheckResult], out: TextIO) -> int:
    """Print the report; the exit code: 0 clean, 1 with violations."""
    failed = 0
    for result in results:
        if result.violations == 0:
            print(f"ok    {result.name} ({result.seconds:.1f} s)", file=out)
            continue
        failed += 1
        print(f"FAIL  {result.name}: {result.violations} violation(s)", file=out)
        for example in result.examples:
            print("        " + " | ".join(str(v) for v in example), file=out)
    print(
        "ledger-check: clean" if not failed else f"ledger-check: {failed} check(s) failed", file=out
    )
    return 1 if failed else 0


def _plain(value: object) -> object:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else value
