"""In-memory adapters for every port, with the semantics the SQL adapters have.

A unit of work takes the store's lock for its whole life (so transactions are serial, like
rows locked FOR UPDATE) and works on a copy that replaces the store only on commit: leave
without commit and nothing happened. Unique keys raise AlreadyDone like a duplicate-key
error; balances follow flamepay.ledger's floor rule like the SQL conditional update.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from flamepay import ledger as ledger_rules
from flamepay.access_code import AccessCode
from flamepay.catalogue import Gateway, Package
from flamepay.errors import AlreadyDone, RetryableConflict
from flamepay.ledger import Entry, Journal, JournalKind
from flamepay.ledger_views import KindTotals, LedgerLine, account_class
from flamepay.order import Order, OrderState
from flamepay.payout import Payout, PayoutStatus
from flamepay.ports import UserCounts
from flamepay.records import (
    AlertClaim,
    AuditEntry,
    CallbackEvent,
    OutboxMessage,
    Review,
    ReviewStatus,
)
from flamepay.search_orders import user_id_term
from flamepay.user import User


@dataclass
class StoredJournal:
    journal: Journal
    posted_at: datetime
    seq: int


@dataclass
class MemoryState:
    users: dict[int, User] = field(default_factory=dict)
    codes: dict[int, AccessCode] = field(default_factory=dict)
    code_index: dict[str, int] = field(default_factory=dict)
    failed_activations: list[tuple[int, datetime]] = field(default_factory=list)
    gateways: dict[str, Gateway] = field(default_factory=dict)
    packages: dict[int, Package] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    order_numbers: dict[str, int] = field(default_factory=dict)
    provider_numbers: dict[str, int] = field(default_factory=dict)
    journals: dict[str, StoredJournal] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    entries: list[LedgerLine] = field(default_factory=list)  # in posting order (id ascending)
    payouts: dict[int, Payout] = field(default_factory=dict)
    txids: dict[str, int] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    callback_events: list[CallbackEvent] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    reviews: dict[int, Review] = field(default_factory=dict)
    review_keys: dict[str, int] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)
    copies: list[tuple[str, int, int]] = field(default_factory=list)
    alerts: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # last sent, held

    def clone(self) -> MemoryState:
        # Shallow copies of every container suffice: stored entities are never changed in
        # place (repositories store and hand out copies), so sharing them is safe.
        return MemoryState(**{f.name: copy.copy(getattr(self, f.name)) for f in fields(self)})

    def new_id(self, kind: str) -> int:
        value = self.next_id.get(kind, 0) + 1
        self.next_id[kind] = value
        return value


def _copy(obj):  # entities go out as copies: a change counts only once saved
    return copy.copy(obj)


class MemoryUsers:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def get(self, user_id: int) -> User | None:
        user = self.s.users.get(user_id)
        return _copy(user) if user else None

    get_for_update = get

    def add(self, user: User) -> None:
        if user.id in self.s.users:
            raise AlreadyDone(f"user:{user.id}")
        self.s.users[user.id] = _copy(user)

    def save(self, user: User) -> None:
        self.s.users[user.id] = _copy(user)

    def counts(self) -> UserCounts:
        users = self.s.users.values()
        return UserCounts(
            total=len(self.s.users),
            active=sum(1 for u in users if u.activated and not u.banned),
            banned=sum(1 for u in users if u.banned),
        )


class MemoryAccessCodes:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def add(self, code: AccessCode) -> AccessCode:
        if code.code in self.s.code_index:
            raise AlreadyDone(f"code:{code.id}")
        code = _copy(code)
        code.id = self.s.new_id("code")
        self.s.codes[code.id] = code
        self.s.code_index[code.code] = code.id
        return _copy(code)

    def redeem(self, code: str, now: datetime) -> AccessCode | None:
        code_id = self.s.code_index.get(code)
        stored = self.s.codes.get(code_id) if code_id else None
        if stored is None or not stored.usable(now):
            return None
        used = _copy(stored)
        used.uses += 1
        used.last_used_at = now
        self.s.codes[used.id] = used
        return _copy(used)

    def record_failed_attempt(self, user_id: int, now: datetime) -> None:
        self.s.failed_activations.append((user_id, now))

    def recent(self, limit: int) -> list[AccessCode]:
        return [_copy(c) for c in sorted(self.s.codes.values(), key=lambda c: -c.id)[:limit]]

    def count_failed_attempts(self, user_id: int, since: datetime) -> int:
        return sum(1 for uid, at in self.s.failed_activations if uid == user_id and at >= since)


class MemoryCatalogue:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def gateway(self, way_code: str) -> Gateway | None:
        gw = self.s.gateways.get(way_code)
        return _copy(gw) if gw else None

    def save_gateway(self, gateway: Gateway) -> None:
        self.s.gateways[gateway.way_code] = _copy(gateway)

    def gateways(self) -> list[Gateway]:
        return [_copy(g) for g in sorted(self.s.gateways.values(), key=lambda g: g.way_code)]

    def package(self, package_id: int) -> Package | None:
        pkg = self.s.packages.get(package_id)
        return _copy(pkg) if pkg else None

    def add_package(self, package: Package) -> Package:
        package = _copy(package)
        package.id = self.s.new_id("package")
        self.s.packages[package.id] = package
        return _copy(package)

    def save_package(self, package: Package) -> None:
        self.s.packages[package.id] = _copy(package)

    def packages(self, way_code: str | None = None) -> list[Package]:
        found = [p for p in self.s.packages.values() if way_code is None or p.way_code == way_code]
        return [_copy(p) for p in sorted(found, key=lambda p: (p.sort_order, p.id))]


class MemoryOrders:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def add(self, order: Order) -> Order:
        if order.mch_order_no in self.s.order_numbers:
            raise AlreadyDone(f"order:{order.mch_order_no}")
        order = _copy(order)
        order.id = self.s.new_id("order")
        self.s.orders[order.id] = order
        self.s.order_numbers[order.mch_order_no] = order.id
        return _copy(order)

    def get(self, order_id: int) -> Order | None:
        order = self.s.orders.get(order_id)
        return _copy(order) if order else None

    def get_by_number(self, number: str) -> Order | None:
        order_id = self.s.order_numbers.get(number) or self.s.provider_numbers.get(number)
        return self.get(order_id) if order_id else None

    def get_for_update(self, mch_order_no: str) -> Order | None:
        order_id = self.s.order_numbers.get(mch_order_no)
        return self.get(order_id) if order_id else None

    def save(self, order: Order) -> None:
        if order.provider_order_no:
            owner = self.s.provider_numbers.get(order.provider_order_no)
            if owner is not None and owner != order.id:
                raise AlreadyDone(f"provider-order:{order.provider_order_no}")
            self.s.provider_numbers[order.provider_order_no] = order.id
        self.s.orders[order.id] = _copy(order)

    def open_for_user(self, user_id: int) -> list[Order]:
        return [
            _copy(o)
            for o in self.s.orders.values()
            if o.user_id == user_id and o.is_open and not o.under_review
        ]

    def has_disputed(self, user_id: int) -> bool:
        return any(
            o.user_id == user_id and o.state is OrderState.DISPUTED for o in self.s.orders.values()
        )

    def due_for_expiry(self, now: datetime, limit: int) -> list[Order]:
        due = [
            o
            for o in self.s.orders.values()
            if o.is_open and not o.under_review and o.expires_at <= now
        ]
        return [_copy(o) for o in sorted(due, key=lambda o: (o.expires_at, o.id))[:limit]]

    def due_for_reconcile(self, states, changed_before, changed_after, not_since, limit):
        wanted = set(states)
        due = [
            o
            for o in self.s.orders.values()
            if o.state in wanted
            and not o.under_review
            and (changed_before is None or (o.updated_at or o.created_at) <= changed_before)
            and (changed_after is None or (o.updated_at or o.created_at) >= changed_after)
            and (o.reconciled_at is None or o.reconciled_at < not_since)
        ]
        due.sort(key=lambda o: (o.updated_at or o.created_at, o.id))
        return [_copy(o) for o in due[:limit]]

    def claim_reconcile(self, order_id: int, now: datetime, not_since: datetime) -> bool:
        order = self.s.orders.get(order_id)
        if order is None or (order.reconciled_at is not None and order.reconciled_at >= not_since):
            return False
        claimed = _copy(order)
        claimed.reconciled_at = now
        self.s.orders[order_id] = claimed
        return True

    def search(self, term: str, limit: int) -> list[Order]:
        found = [self.get_by_number(term)] if self.get_by_number(term) else []
        user_id = user_id_term(term)
        if user_id is not None:
            found += [o for o in self.s.orders.values() if o.user_id == user_id]
        unique = {o.id: o for o in found}
        return [_copy(o) for o in sorted(unique.values(), key=lambda o: -o.id)[:limit]]

    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Order]:
        mine = [
            o
            for o in self.s.orders.values()
            if o.user_id == user_id and (before is None or o.id < before)
        ]
        return [_copy(o) for o in sorted(mine, key=lambda o: -o.id)[:limit]]


class MemoryLedger:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def post(self, journal: Journal, now: datetime) -> None:
        if journal.key in self.s.journals:
            raise AlreadyDone(journal.key)
        # Raises InsufficientFunds before anything is written, like the conditional UPDATE.
        self.s.balances = ledger_rules.apply_to_balances(self.s.balances, journal)
        self.s.journals[journal.key] = StoredJournal(journal, now, self.s.new_id("journal"))
        for entry in journal.entries:
            self.s.entries.append(
                LedgerLine(
                    self.s.new_id("entry"),
                    journal.key,
                    journal.kind,
                    entry.account,
                    entry.amount,
                    now,
                    journal.memo,
                )
            )

    def balance(self, account: str) -> int:
        return self.s.balances.get(account, 0)

    def lock_balances(self, accounts: Sequence[str]) -> dict[str, int]:
        # One unit of work at a time here: what is read is what holds until the commit.
        return {account: self.balance(account) for account in accounts}

    def entries_of(self, key: str) -> tuple[Entry, ...] | None:
        stored = self.s.journals.get(key)
        return stored.journal.entries if stored else None

    def history(self, accounts: Sequence[str], before: int | None, limit: int) -> list[LedgerLine]:
        wanted = set(accounts)
        found: list[LedgerLine] = []
        for line in reversed(self.s.entries):
            if len(found) == limit:
                break
            if line.account in wanted and (before is None or line.id < before):
                found.append(line)
        return found

    def credited_total(self, user_id: int) -> int:
        return self.account_total(ledger_rules.available(user_id), ledger_rules.CREDITING_KINDS)

    def account_total(self, account: str, kinds: Sequence[JournalKind]) -> int:
        wanted = set(kinds)
        return sum(e.amount for e in self.s.entries if e.account == account and e.kind in wanted)

    def kind_totals(self, kind: JournalKind) -> KindTotals:
        by_account: dict[str, int] = {}
        count = 0
        for stored in self.s.journals.values():
            if stored.journal.kind is not kind:
                continue
            count += 1
            for entry in stored.journal.entries:
                cls = account_class(entry.account)
                by_account[cls] = by_account.get(cls, 0) + entry.amount
        return KindTotals(count, by_account)

    def export(self, after: int | None, limit: int) -> list[LedgerLine]:
        return [e for e in self.s.entries if after is None or e.id > after][:limit]

    def user_liability(self) -> int:
        return sum(v for k, v in self.s.balances.items() if ledger_rules.is_user_account(k))


class MemoryPayouts:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def add(self, payout: Payout) -> Payout:
        payout = _copy(payout)
        payout.id = self.s.new_id("payout")
        self.s.payouts[payout.id] = payout
        return _copy(payout)

    def get(self, payout_id: int) -> Payout | None:
        payout = self.s.payouts.get(payout_id)
        return _copy(payout) if payout else None

    get_for_update = get

    def save(self, payout: Payout) -> None:
        if payout.txid:
            owner = self.s.txids.get(payout.txid)
            if owner is not None and owner != payout.id:
                raise AlreadyDone(f"txid:{payout.txid}")
            self.s.txids[payout.txid] = payout.id
        self.s.payouts[payout.id] = _copy(payout)

    def pending(self, user_id: int | None = None) -> list[Payout]:
        return [
            _copy(p)
            for p in sorted(self.s.payouts.values(), key=lambda p: p.id)
            if p.status is PayoutStatus.PENDING and (user_id is None or p.user_id == user_id)
        ]

    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Payout]:
        mine = [
            p
            for p in self.s.payouts.values()
            if p.user_id == user_id and (before is None or p.id < before)
        ]
        return [_copy(p) for p in sorted(mine, key=lambda p: -p.id)[:limit]]

    def totals(self) -> dict[PayoutStatus, tuple[int, int]]:
        result = {status: (0, 0) for status in PayoutStatus}
        for p in self.s.payouts.values():
            count, total = result[p.status]
            result[p.status] = (count + 1, total + p.amount)
        return result


class MemoryAudit:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def record(self, entry: AuditEntry) -> None:
        self.s.audit.append(entry)


class MemoryCallbackEvents:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def record(self, event: CallbackEvent) -> None:
        self.s.callback_events.append(event)

    def count(self, outcome: str, since: datetime) -> int:
        return sum(1 for e in self.s.callback_events if e.outcome == outcome and e.at >= since)


class MemoryOutbox:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def add(self, message: OutboxMessage) -> None:
        message = _copy(message)
        message.id = self.s.new_id("outbox")
        self.s.outbox.append(message)

    def pending(self, limit: int) -> list[OutboxMessage]:
        return [_copy(m) for m in self.s.outbox if m.sent_at is None][:limit]

    def mark_sent(self, message_id: int, at: datetime) -> None:
        for index, message in enumerate(self.s.outbox):
            if message.id == message_id:
                sent = _copy(message)
                sent.sent_at = at
                self.s.outbox[index] = sent

    def oldest_pending_at(self) -> datetime | None:
        return next((m.created_at for m in self.s.outbox if m.sent_at is None), None)

    def record_copy(self, ref: str, chat_id: int, message_id: int, at: datetime) -> None:
        self.s.copies.append((ref, chat_id, message_id))

    def copies(self, ref: str) -> list[tuple[int, int]]:
        return [(chat, message) for r, chat, message in self.s.copies if r == ref]


class MemoryAlerts:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def claim(self, key: str, now: datetime, interval_seconds: int) -> AlertClaim:
        last, held = self.s.alerts.get(key, (None, 0))
        if last is not None and (now - last).total_seconds() < interval_seconds:
            self.s.alerts[key] = (last, held + 1)
            return AlertClaim(False, held + 1)
        self.s.alerts[key] = (now, 0)
        return AlertClaim(True, held)


class MemoryReviews:
    def __init__(self, s: MemoryState) -> None:
        self.s = s

    def open(self, review: Review) -> bool:
        if review.key in self.s.review_keys:
            return False
        review = _copy(review)
        review.id = self.s.new_id("review")
        self.s.reviews[review.id] = review
        self.s.review_keys[review.key] = review.id
        return True

    def for_order(self, order_id: int) -> list[Review]:
        return [_copy(r) for r in self.s.reviews.values() if r.order_id == order_id]

    def get_for_update(self, review_id: int) -> Review | None:
        review = self.s.reviews.get(review_id)
        return _copy(review) if review else None

    def save(self, review: Review) -> None:
        self.s.reviews[review.id] = _copy(review)

    def pending(self) -> list[Review]:
        return [_copy(r) for r in self.s.reviews.values() if r.status is ReviewStatus.OPEN]


class MemoryUnitOfWork:
    def __init__(self, factory: MemoryUnitOfWorkFactory) -> None:
        self._factory = factory
        self._committed = False

    def __enter__(self) -> Self:
        self._factory.lock.acquire()
        self._work = self._factory.state.clone()
        s = self._work
        self.users = MemoryUsers(s)
        self.access_codes = MemoryAccessCodes(s)
        self.catalogue = MemoryCatalogue(s)
        self.orders = MemoryOrders(s)
        self.ledger = MemoryLedger(s)
        self.payouts = MemoryPayouts(s)
        self.audit = MemoryAudit(s)
        self.callback_events = MemoryCallbackEvents(s)
        self.outbox = MemoryOutbox(s)
        self.reviews = MemoryReviews(s)
        self.alerts = MemoryAlerts(s)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                self.rollback()
        finally:
            self._factory.lock.release()

    def commit(self) -> None:
        if self._factory.conflicts_to_inject > 0:
            # A test fault: behave like a deadlock found at commit; nothing is kept.
            self._factory.conflicts_to_inject -= 1
            raise RetryableConflict("injected conflict")
        self._factory.state = self._work
        self._committed = True

    def rollback(self) -> None:
        self._work = MemoryState()


class MemoryUnitOfWorkFactory:
    def __init__(self, state: MemoryState | None = None) -> None:
        self.state = state or MemoryState()
        self.lock = threading.RLock()
        self.retries = 0
        self.conflicts_to_inject = 0

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def before_retry(self, attempt: int) -> None:
        self.retries += 1


class ManualClock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


class SequentialIds:
    """Predictable ids for tests: FP000001, FP000002, ..."""

    def __init__(self, prefix: str = "FP") -> None:
        self._counter = itertools.count(1)
        self.prefix = prefix

    def order_number(self) -> str:
        return f"{self.prefix}{next(self._counter):08d}"

    def access_code(self, bits: int) -> str:
        return f"CODE{next(self._counter):012d}"

    def token(self) -> str:
        return f"t{next(self._counter)}"


class AllowAll:
    """Eligibility that allows everything (the rules come with users and codes)."""

    def check_open_order(self, uow, user_id: int, package: Package) -> Order | None:
        return None

    def check_payout(self, uow, user_id: int) -> None:
        return None

    def check_user(self, uow, user_id: int) -> None:
        return None


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def send(self, chat_id: int, text: str) -> None:
        self.sent.append((chat_id, text))
