"""Orders in SQL."""

from __future__ import annotations

from datetime import datetime

from adapters.sql.session import DuplicateKey, Session, from_db_time, in_list, text, to_db_time
from flamepay.errors import AlreadyDone
from flamepay.order import OPEN_STATES, Order, OrderState, ReviewFlag
from flamepay.search_orders import user_id_term

_COLUMNS = (
    "id, mch_order_no, provider_order_no, user_id, package_id, way_code, amount, currency, "
    "fee_bp, state, review, cashier_url, created_at, expires_at, updated_at, reconciled_at"
)
_OPEN = tuple(int(state) for state in sorted(OPEN_STATES))


def _order(row: tuple) -> Order:
    return Order(
        id=int(row[0]),
        mch_order_no=text(row[1]),
        provider_order_no=text(row[2]) if row[2] is not None else None,
        user_id=int(row[3]),
        package_id=int(row[4]),
        way_code=text(row[5]),
        amount=int(row[6]),
        currency=row[7],
        fee_bp=int(row[8]),
        state=OrderState(int(row[9])),
        review=ReviewFlag(row[10]),
        cashier_url=row[11],
        created_at=from_db_time(row[12]),
        expires_at=from_db_time(row[13]),
        updated_at=from_db_time(row[14]),
        reconciled_at=from_db_time(row[15]),
    )


def _bytes(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


class SqlOrders:
    def __init__(self, s: Session) -> None:
        self.s = s

    def add(self, order: Order) -> Order:
        try:
            order.id = self.s.insert(
                "INSERT INTO orders (mch_order_no, provider_order_no, user_id, package_id, "
                "way_code, amount, currency, fee_bp, state, review, cashier_url, created_at, "
                "expires_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    order.mch_order_no.encode(),
                    _bytes(order.provider_order_no),
                    order.user_id,
                    order.package_id,
                    order.way_code.encode(),
                    order.amount,
                    order.currency,
                    order.fee_bp,
                    int(order.state),
                    order.review.value,
                    order.cashier_url,
                    to_db_time(order.created_at),
                    to_db_time(order.expires_at),
                    to_db_time(order.updated_at),
                ),
            )
        except DuplicateKey:
            raise AlreadyDone(f"order:{order.mch_order_no}") from None
        return order

    def get(self, order_id: int) -> Order | None:
        row = self.s.one(f"SELECT {_COLUMNS} FROM orders WHERE id = %s", (order_id,))
        return _order(row) if row else None

    def get_by_number(self, number: str) -> Order | None:
        key = number.encode()
        row = self.s.one(f"SELECT {_COLUMNS} FROM orders WHERE mch_order_no = %s", (key,))
        if row is None:
            row = self.s.one(f"SELECT {_COLUMNS} FROM orders WHERE provider_order_no = %s", (key,))
        return _order(row) if row else None

    def get_for_update(self, mch_order_no: str) -> Order | None:
        row = self.s.one(
            f"SELECT {_COLUMNS} FROM orders WHERE mch_order_no = %s{self.s.dialect.for_update}",
            (mch_order_no.encode(),),
        )
        return _order(row) if row else None

    def save(self, order: Order) -> None:
        try:
            self.s.execute(
                "UPDATE orders SET provider_order_no = %s, state = %s, review = %s, "
                "cashier_url = %s, updated_at = %s WHERE id = %s",
                (
                    _bytes(order.provider_order_no),
                    int(order.state),
                    order.review.value,
                    order.cashier_url,
                    to_db_time(order.updated_at),
                    order.id,
                ),
            )
        except DuplicateKey:
            raise AlreadyDone(f"provider-order:{order.provider_order_no}") from None

    def open_for_user(self, user_id: int) -> list[Order]:
        rows = self.s.all(
            f"SELECT {_COLUMNS} FROM orders WHERE user_id = %s AND state IN ({in_list(_OPEN)}) "
            "AND review <> 'pending' ORDER BY id",
            (user_id, *_OPEN),
        )
        return [_order(r) for r in rows]

    def has_disputed(self, user_id: int) -> bool:
        return (
            self.s.one(
                "SELECT 1 FROM orders WHERE user_id = %s AND state = %s LIMIT 1",
                (user_id, int(OrderState.DISPUTED)),
            )
            is not None
        )

    def due_for_expiry(self, now: datetime, limit: int) -> list[Order]:
        # One index range scan on (state, review, expires_at) per pair, merged: bounded by
        # `limit`.
        found: list[Order] = []
        for state, review in _pairs(_OPEN):
            rows = self.s.all(
                f"SELECT {_COLUMNS} FROM orders WHERE state = %s AND review = %s "
                "AND expires_at <= %s ORDER BY expires_at, id LIMIT %s",
                (state, review, to_db_time(now), limit),
            )
            found += [_order(r) for r in rows]
        return sorted(found, key=lambda o: (o.expires_at, o.id))[:limit]

    def due_for_reconcile(self, states, changed_before, changed_after, not_since, limit):
        # One index range per (state, review) on (state, review, updated_at), each bounded
        # by limit.
        found: list[Order] = []
        for state, review in _pairs(states):
            sql = (
                f"SELECT {_COLUMNS} FROM orders WHERE state = %s AND review = %s "
                "AND (reconciled_at IS NULL OR reconciled_at < %s)"
            )
            params: list = [state, review, to_db_time(not_since)]
            # updated_at is set when an order is opened and on every change.
            if changed_before is not None:
                sql += " AND updated_at <= %s"
                params.append(to_db_time(changed_before))
            if changed_after is not None:
                sql += " AND updated_at >= %s"
                params.append(to_db_time(changed_after))
            sql += " ORDER BY updated_at, id LIMIT %s"
            found += [_order(r) for r in self.s.all(sql, (*params, limit))]
        found.sort(key=lambda o: (o.updated_at or o.created_at, o.id))
        return found[:limit]

    def claim_reconcile(self, order_id: int, now: datetime, not_since: datetime) -> bool:
        changed = self.s.execute(
            "UPDATE orders SET reconciled_at = %s WHERE id = %s "
            "AND (reconciled_at IS NULL OR reconciled_at < %s)",
            (to_db_time(now), order_id, to_db_time(not_since)),
        )
        return changed == 1

    def search(self, term: str, limit: int) -> list[Order]:
        found = []
        exact = self.get_by_number(term)
        if exact is not None:
            found.append(exact)
        if user_id_term(term) is not None:
            found += self.list_for_user(int(term), None, limit)
        unique = {o.id: o for o in found}
        return sorted(unique.values(), key=lambda o: -o.id)[:limit]

    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Order]:
        if before is None:
            rows = self.s.all(
                f"SELECT {_COLUMNS} FROM orders WHERE user_id = %s ORDER BY id DESC LIMIT %s",
                (user_id, limit),
            )
        else:
            rows = self.s.all(
                f"SELECT {_COLUMNS} FROM orders WHERE user_id = %s AND id < %s "
                "ORDER BY id DESC LIMIT %s",
                (user_id, before, limit),
            )
        return [_order(r) for r in rows]


# An order under a pending review waits for an admin; one whose review was resolved is back
# under the rules (sweeps, expiry, the open-order count) like any other. Listed rather than
# `<> 'pending'` so each query stays one index range on (state, review, ...).
SWEPT_REVIEWS = tuple(f.value for f in ReviewFlag if f is not ReviewFlag.PENDING)


def _pairs(states) -> list[tuple[int, str]]:
    return [(int(state), review) for state in states for review in SWEPT_REVIEWS]
