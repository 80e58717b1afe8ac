"""The double-entry ledger in SQL.

post(): the journal's UNIQUE key is inserted first (a duplicate means "already done", never
SELECT-then-INSERT); the accounts are then locked in ascending id (the design's lock order)
and each balance moves with one UPDATE, conditional (balance + x >= 0) for the accounts the
journal must not take below zero. Balances live beside the entries in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.sql.session import DuplicateKey, Session, from_db_time, in_list, text, to_db_time
from flamepay.errors import AlreadyDone, InsufficientFunds
from flamepay.ledger import Entry, Journal, JournalKind, available, user_of
from flamepay.ledger_views import KindTotals, LedgerLine, account_class


class SqlLedger:
    def __init__(self, s: Session) -> None:
        self.s = s

    # --- accounts ---------------------------------------------------------------------------
    def _account_ids(self, names: Sequence[str], create: bool) -> dict[str, int]:
        # Account ids never change once committed, so the ids this database handed out are
        # remembered (per database, never across databases) and the lookup is skipped.
        known = self.s.account_ids
        ids = {n: known[n] for n in names if n in known}
        missing = [n for n in names if n not in ids]
        if missing:
            keys = [n.encode() for n in missing]
            rows = self.s.all(
                f"SELECT name, id FROM accounts WHERE name IN ({in_list(keys)})", keys
            )
            committed = {text(r[0]): int(r[1]) for r in rows}
            known.update(committed)  # a plain read sees committed rows only: safe to keep
            ids.update(committed)
            missing = [n for n in names if n not in ids]
        if missing and create:
            self.s.executemany(
                f"{self.s.dialect.insert_ignore} INTO accounts (name, user_id, aclass, balance) "
                "VALUES (%s, %s, %s, 0)",
                [(n.encode(), user_of(n), account_class(n)) for n in missing],
            )
            more = [n.encode() for n in missing]
            # A locking read: it sees a row another transaction committed after our snapshot
            # (its INSERT won and ours was ignored), which a plain read would not. Not
            # remembered: our own insert may yet be rolled back.
            rows = self.s.all(
                f"SELECT name, id FROM accounts WHERE name IN ({in_list(more)})"
                f"{self.s.dialect.for_update}",
                more,
            )
            ids.update({text(r[0]): int(r[1]) for r in rows})
        return ids

    def post(self, journal: Journal, now: datetime) -> None:
        at = to_db_time(now)
        try:
            journal_id = self.s.insert(
                "INSERT INTO journals (jkey, kind, user_id, order_id, payout_id, memo, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    journal.key.encode(),
                    journal.kind.value,
                    journal.user_id,
                    journal.order_id,
                    journal.payout_id,
                    journal.memo[:255],
                    at,
                ),
            )
        except DuplicateKey:
            raise AlreadyDone(journal.key) from None
        ids = self._account_ids([e.account for e in journal.entries], create=True)
        ordered = sorted(ids.values())
        # Lock every account of the journal in ascending id, in one statement; the balances
        # read under the lock are the latest, so the new ones are known without reading again.
        locked = {
            int(r[0]): int(r[1])
            for r in self.s.all(
                f"SELECT id, balance FROM accounts WHERE id IN ({in_list(ordered)}) ORDER BY id"
                f"{self.s.dialect.for_update}",
                ordered,
            )
        }
        floors = self.floors_of(journal)
        plain: list[tuple[int, int]] = []
        for entry in sorted(journal.entries, key=lambda e: ids[e.account]):
            account_id = ids[entry.account]
            if entry.account in floors:
                changed = self.s.execute(
                    "UPDATE accounts SET balance = balance + %s "
                    "WHERE id = %s AND balance + %s >= 0",
                    (entry.amount, account_id, entry.amount),
                )
                if changed != 1:
                    raise InsufficientFunds(entry.account)
            else:
                plain.append((account_id, entry.amount))
        if plain:
            # The accounts without a floor move in one statement (one round trip under lock).
            cases = " ".join("WHEN %s THEN %s" for _ in plain)
            params = [v for pair in plain for v in pair]
            credited = ""
            # "Credited in total" moves with the user's available account.
            user_accounts = [(ids[a], amount) for a, amount in journal.credited().items()]
            if user_accounts:
                credit_cases = " ".join("WHEN %s THEN %s" for _ in user_accounts)
                credited = f", credited = credited + CASE id {credit_cases} ELSE 0 END"
                params += [v for pair in user_accounts for v in pair]
            self.s.execute(
                f"UPDATE accounts SET balance = balance + CASE id {cases} END{credited} "
                f"WHERE id IN ({in_list(plain)})",
                params + [a for a, _ in plain],
            )
        self.s.executemany(
            "INSERT INTO ledger_entries (journal_id, account_id, amount, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [(journal_id, ids[e.account], e.amount, at) for e in journal.entries],
        )
        for entry in journal.entries:
            self.s.balances[entry.account] = locked[ids[entry.account]] + entry.amount

    def lock_balances(self, accounts: Sequence[str]) -> dict[str, int]:
        ids = self._account_ids(list(accounts), create=True)
        ordered = sorted(set(ids.values()))
        rows = self.s.all(
            f"SELECT id, balance FROM accounts WHERE id IN ({in_list(ordered)}) ORDER BY id"
            f"{self.s.dialect.for_update}",
            ordered,
        )
        by_id = {int(r[0]): int(r[1]) for r in rows}
        locked = {name: by_id[account_id] for name, account_id in ids.items()}
        self.s.balances.update(locked)  # read under our lock: balance() may answer from it
        return locked

    def floors_of(self, journal: Journal) -> frozenset[str]:
        """Accounts whose UPDATE carries the balance + x >= 0 condition."""
        return journal.floors()

    def balance(self, account: str) -> int:
        if account in self.s.balances:  # posted in this transaction, under our lock
            return self.s.balances[account]
        value = self.s.scalar("SELECT balance FROM accounts WHERE name = %s", (account.encode(),))
        return int(value or 0)

    def entries_of(self, key: str) -> tuple[Entry, ...] | None:
        journal_id = self.s.scalar("SELECT id FROM journals WHERE jkey = %s", (key.encode(),))
        if journal_id is None:
            return None
        rows = self.s.all(
            "SELECT a.name, e.amount FROM ledger_entries e JOIN accounts a ON a.id = e.account_id "
            "WHERE e.journal_id = %s ORDER BY e.id",
            (journal_id,),
        )
        return tuple(Entry(text(r[0]), int(r[1])) for r in rows)

    def history(self, accounts: Sequence[str], before: int | None, limit: int) -> list[LedgerLine]:
        ids = self._account_ids(accounts, create=False)
        lines: list[LedgerLine] = []
        # One keyset scan of (account_id, id) per account, merged here: each is bounded by
        # `limit`, so the cost does not grow with the length of the history.
        for name, account_id in ids.items():
            bound = "" if before is None else " AND e.id < %s"
            params = (account_id,) if before is None else (account_id, before)
            rows = self.s.all(
                "SELECT e.id, j.jkey, j.kind, e.amount, e.created_at, j.memo "
                "FROM ledger_entries e JOIN journals j ON j.id = e.journal_id "
                f"WHERE e.account_id = %s{bound} ORDER BY e.id DESC LIMIT %s",
                (*params, limit),
            )
            lines += [
                LedgerLine(
                    int(r[0]),
                    text(r[1]),
                    JournalKind(r[2]),
                    name,
                    int(r[3]),
                    from_db_time(r[4]),
                    r[5],
                )
                for r in rows
            ]
        return sorted(lines, key=lambda line: -line.id)[:limit]

    def credited_total(self, user_id: int) -> int:
        value = self.s.scalar(
            "SELECT credited FROM accounts WHERE name = %s", (available(user_id).encode(),)
        )
        return int(value or 0)

    def account_total(self, account: str, kinds: Sequence[JournalKind]) -> int:
        values = [k.value for k in kinds]
        total = self.s.scalar(
            "SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e "
            "JOIN accounts a ON a.id = e.account_id JOIN journals j ON j.id = e.journal_id "
            f"WHERE a.name = %s AND j.kind IN ({in_list(values)})",
            (account.encode(), *values),
        )
        return int(total or 0)

    def kind_totals(self, kind: JournalKind) -> KindTotals:
        count = self.s.scalar("SELECT COUNT(*) FROM journals WHERE kind = %s", (kind.value,))
        rows = self.s.all(
            "SELECT a.aclass, SUM(e.amount) FROM ledger_entries e "
            "JOIN journals j ON j.id = e.journal_id JOIN accounts a ON a.id = e.account_id "
            "WHERE j.kind = %s GROUP BY a.aclass",
            (kind.value,),
        )
        return KindTotals(int(count or 0), {r[0]: int(r[1]) for r in rows})

    def export(self, after: int | None, limit: int) -> list[LedgerLine]:
        rows = self.s.all(
            "SELECT e.id, j.jkey, j.kind, a.name, e.amount, e.created_at, j.memo "
            "FROM ledger_entries e JOIN journals j ON j.id = e.journal_id "
            "JOIN accounts a ON a.id = e.account_id WHERE e.id > %s ORDER BY e.id LIMIT %s",
            (after or 0, limit),
        )
        return [
            LedgerLine(
                int(r[0]),
                text(r[1]),
                JournalKind(r[2]),
                text(r[3]),
                int(r[4]),
                from_db_time(r[5]),
                r[6],
            )
            for r in rows
        ]

    def user_liability(self) -> int:
        total = self.s.scalar(
            "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE user_id IS NOT NULL"
        )
        return int(total or 0)
