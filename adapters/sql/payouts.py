"""Payouts in SQL."""

from __future__ import annotations

from adapters.sql.session import DuplicateKey, Session, from_db_time, text, to_db_time
from flamepay.errors import AlreadyDone
from flamepay.payout import Network, Payout, PayoutStatus

_COLUMNS = (
    "id, user_id, amount, network, address, network_fee, created_at, status, resolved_by, "
    "resolved_at, txid, note"
)


def _payout(row: tuple) -> Payout:
    return Payout(
        id=int(row[0]),
        user_id=int(row[1]),
        amount=int(row[2]),
        network=Network(row[3]),
        address=row[4],
        network_fee=int(row[5]),
        created_at=from_db_time(row[6]),
        status=PayoutStatus(row[7]),
        resolved_by=row[8],
        resolved_at=from_db_time(row[9]),
        txid=text(row[10]) if row[10] is not None else None,
        note=row[11],
    )


class SqlPayouts:
    def __init__(self, s: Session) -> None:
        self.s = s

    def add(self, payout: Payout) -> Payout:
        payout.id = self.s.insert(
            "INSERT INTO payouts (user_id, amount, network, address, network_fee, created_at, "
            "status, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                payout.user_id,
                payout.amount,
                payout.network.value,
                payout.address,
                payout.network_fee,
                to_db_time(payout.created_at),
                payout.status.value,
                payout.note,
            ),
        )
        return payout

    def get(self, payout_id: int) -> Payout | None:
        row = self.s.one(f"SELECT {_COLUMNS} FROM payouts WHERE id = %s", (payout_id,))
        return _payout(row) if row else None

    def get_for_update(self, payout_id: int) -> Payout | None:
        row = self.s.one(
            f"SELECT {_COLUMNS} FROM payouts WHERE id = %s{self.s.dialect.for_update}",
            (payout_id,),
        )
        return _payout(row) if row else None

    def save(self, payout: Payout) -> None:
        try:
            self.s.execute(
                "UPDATE payouts SET status = %s, resolved_by = %s, resolved_at = %s, txid = %s, "
                "note = %s WHERE id = %s",
                (
                    payout.status.value,
                    payout.resolved_by,
                    to_db_time(payout.resolved_at),
                    payout.txid.encode() if payout.txid else None,
                    payout.note[:255],
                    payout.id,
                ),
            )
        except DuplicateKey:
            raise AlreadyDone(f"txid:{payout.txid}") from None

    def pending(self, user_id: int | None = None) -> list[Payout]:
        if user_id is None:
            rows = self.s.all(
                f"SELECT {_COLUMNS} FROM payouts WHERE status = 'pending' ORDER BY id LIMIT 500"
            )
        else:
            rows = self.s.all(
                f"SELECT {_COLUMNS} FROM payouts WHERE user_id = %s AND status = 'pending' "
                "ORDER BY id",
                (user_id,),
            )
        return [_payout(r) for r in rows]

    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Payout]:
        bound = "" if before is None else " AND id < %s"
        params = (user_id,) if before is None else (user_id, before)
        rows = self.s.all(
            f"SELECT {_COLUMNS} FROM payouts WHERE user_id = %s{bound} ORDER BY id DESC LIMIT %s",
            (*params, limit),
        )
        return [_payout(r) for r in rows]

    def totals(self) -> dict[PayoutStatus, tuple[int, int]]:
        result = {status: (0, 0) for status in PayoutStatus}
        for status, count, total in self.s.all(
            "SELECT status, COUNT(*), COALESCE(SUM(amount), 0) FROM payouts GROUP BY status"
        ):
            result[PayoutStatus(status)] = (int(count), int(total))
        return result
