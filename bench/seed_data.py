"""Fill a MariaDB database, through the project's own schema, with users, N orders in mixed
states and their ledger entries (bulk inserts), including one heavy user with well over 100
pages of history. The books it writes pass `flamepay ledger-check`.

    .venv/bin/python -m bench.seed_data --orders 1000000 --database fp_scale_large
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from adapters import mysql_ops
from adapters.mysql import MySqlConfig, MySqlDatabase
from bench.common import bench_mysql
from flamepay import ledger
from flamepay.ledger_views import account_class
from flamepay.money import split_payment

BATCH = 5000
FEE_BP = 1500
HEAVY_USER = 1
HEAVY_ORDERS = 1500  # 1500 paid orders: 1500 entries on the available account = 150 pages
# state -> share of the orders (the rest, a handful, are open and recent)
MIX = [(2, 0.60), (6, 0.24), (3, 0.10), (5, 0.04), (7, 0.01)]


def reset(config: MySqlConfig) -> None:
    connection = MySqlDatabase(config).raw_connection(database=False)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{config.database}`")
    connection.close()
    mysql_ops.migrate(config, "sandbox")


def seed(config: MySqlConfig, orders: int, users: int, seed_value: int = 7) -> dict[str, int]:
    rng = random.Random(seed_value)
    reset(config)
    connection = MySqlDatabase(config).raw_connection()
    cursor = connection.cursor()
    cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
    old = (datetime.now(UTC) - timedelta(days=30)).replace(tzinfo=None)
    recent = datetime.now(UTC).replace(tzinfo=None)

    def many(sql: str, rows: list[tuple]) -> None:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
        connection.commit()

    many(
        "INSERT INTO users (id, username, name, first_seen, activated_at, activated_with) "
        "VALUES (%s, %s, %s, %s, %s, '1')",
        [(u, f"user{u}", f"User {u}", old, old) for u in range(1, users + 1)],
    )
    cursor.execute("INSERT INTO gateways (way_code, title, enabled) VALUES ('ALI_QR', 'Alipay', 1)")
    cursor.execute(
        "INSERT INTO packages (id, way_code, label, amount, sort_order, enabled) "
        "VALUES (1, 'ALI_QR', 'Basic', 10000, 0, 1)"
    )
    connection.commit()

    account_ids: dict[str, int] = {}

    def account(name: str) -> int:
        if name not in account_ids:
            account_ids[name] = len(account_ids) + 1
        return account_ids[name]

    balances: dict[int, int] = defaultdict(int)
    credited: dict[int, int] = defaultdict(int)
    order_rows, journal_rows, entry_rows = [], [], []
    journal_id = entry_id = 0
    cumulative = []
    total = 0.0
    for state, share in MIX:
        total += share
        cumulative.append((total, state))
    for order_id in range(1, orders + 1):
        if order_id <= HEAVY_ORDERS:
            user, state = HEAVY_USER, 2
        else:
            user = rng.randint(2, users)
            roll = rng.random()
            state = next((s for limit, s in cumulative if roll < limit), 1)
        amount = rng.choice((1000, 2000, 5000, 10000, 20000))
        number = f"S{order_id:011d}"
        when = recent if state == 1 else old
        order_rows.append(
            (
                order_id,
                number.encode(),
                f"P{order_id:011d}".encode(),
                user,
                1,
                b"ALI_QR",
                amount,
                "USD",
                FEE_BP,
                state,
                when,
                when,
                when,
            )
        )
        if state in (2, 5, 7):
            fee, credit = split_payment(amount, FEE_BP)
            legs = [
                (ledger.CLEARING, -amount),
                (ledger.available(user), credit),
                (ledger.FEES, fee),
            ]
            legs = [(a, x) for a, x in legs if x]
            journal_id += 1
            journal_rows.append(
                (journal_id, ledger.payin_key(number).encode(), "payin", user, order_id, old)
            )
            for name, value in legs:
                entry_id += 1
                entry_rows.append((entry_id, journal_id, account(name), value, old))
                balances[account(name)] += value
                credited[account(name)] += value if name.endswith(":available") else 0
            if state == 5:
                journal_id += 1
                journal_rows.append(
                    (journal_id, ledger.refund_key(number).encode(), "refund", user, order_id, old)
                )
                for name, value in legs:
                    entry_id += 1
                    entry_rows.append((entry_id, journal_id, account(name), -value, old))
                    balances[account(name)] -= value
                    credited[account(name)] -= value if name.endswith(":available") else 0
        if len(order_rows) >= BATCH * 4:
            _flush(cursor, connection, order_rows, journal_rows, entry_rows)
    _flush(cursor, connection, order_rows, journal_rows, entry_rows)
    many(
        "INSERT INTO accounts (id, name, user_id, aclass, balance, credited) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (i, n.encode(), ledger.user_of(n), account_class(n), balances[i], credited[i])
            for n, i in account_ids.items()
        ],
    )
    cursor.execute("SET SESSION unique_checks = 1, foreign_key_checks = 1")
    cursor.execute("ANALYZE TABLE orders, journals, ledger_entries, accounts")
    cursor.fetchall()
    counts = {}
    for table in ("users", "orders", "journals", "ledger_entries", "accounts"):
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        counts[table] = int(cursor.fetchone()[0])
    connection.close()
    return counts


def _flush(cursor, connection, order_rows, journal_rows, entry_rows) -> None:
    statements = (
        (
            "INSERT INTO orders (id, mch_order_no, provider_order_no, user_id, package_id, "
            "way_code, amount, currency, fee_bp, state, created_at, expires_at, updated_at) "
            "VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            order_rows,
        ),
        (
            "INSERT INTO journals (id, jkey, kind, user_id, order_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            journal_rows,
        ),
        (
            "INSERT INTO ledger_entries (id, journal_id, account_id, amount, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            entry_rows,
        ),
    )
    for sql, rows in statements:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
        rows.clear()
    connection.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=0, help="default: orders / 100, at least 100")
    parser.add_argument("--database", default="fp_scale")
    args = parser.parse_args(argv)
    users = args.users or max(100, args.orders // 100)
    started = time.perf_counter()
    counts = seed(bench_mysql(args.database), args.orders, users)
    print(f"seeded {args.database} in {time.perf_counter() - started:.0f} s: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
