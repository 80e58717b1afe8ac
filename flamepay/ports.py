"""The ports: what the core needs from the world, as typing.Protocol.

Adapters implement these; the core never imports an adapter. Every repository is reached
through a UnitOfWork, which is one database transaction: rolled back unless committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from flamepay.access_code import AccessCode
from flamepay.catalogue import Gateway, Package
from flamepay.ledger import Entry, Journal, JournalKind
from flamepay.ledger_views import KindTotals, LedgerLine
from flamepay.order import Order, OrderState
from flamepay.payout import Payout, PayoutStatus
from flamepay.records import AlertClaim, AuditEntry, CallbackEvent, OutboxMessage, Review
from flamepay.report import ProviderReport
from flamepay.user import User


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class IdGenerator(Protocol):
    def order_number(self) -> str:
        """A fresh merchant order number (ASCII, at most 30 characters)."""
        ...

    def access_code(self, bits: int) -> str:
        """A code with at least `bits` bits of entropy, in an easy-to-type alphabet."""
        ...

    def token(self) -> str:
        """A unique opaque id (adjustment ids and the like)."""
        ...


@attrs.frozen
class UserCounts:
    total: int
    active: int  # activated and not banned
    banned: int


class UserRepo(Protocol):
    def get(self, user_id: int) -> User | None: ...
    def get_for_update(self, user_id: int) -> User | None: ...
    def add(self, user: User) -> None:
        """AlreadyDone when the id exists (two first contacts at once)."""
        ...

    def save(self, user: User) -> None: ...
    def counts(self) -> UserCounts: ...


class AccessCodeRepo(Protocol):
    def add(self, code: AccessCode) -> AccessCode:
        """Assigns the id; AlreadyDone when the code text exists."""
        ...

    def redeem(self, code: str, now: datetime) -> AccessCode | None:
        """One conditional update: uses + 1 where uses < max_uses and not expired.
        The code after the update, or None when no usable code has that text."""
        ...

    def record_failed_attempt(self, user_id: int, now: datetime) -> None: ...
    def count_failed_attempts(self, user_id: int, since: datetime) -> int: ...
    def recent(self, limit: int) -> list[AccessCode]:
        """Newest first."""
        ...


class CatalogueRepo(Protocol):
    def gateway(self, way_code: str) -> Gateway | None: ...
    def save_gateway(self, gateway: Gateway) -> None: ...
    def gateways(self) -> list[Gateway]: ...
    def package(self, package_id: int) -> Package | None: ...
    def add_package(self, package: Package) -> Package: ...
    def save_package(self, package: Package) -> None: ...
    def packages(self, way_code: str | None = None) -> list[Package]: ...


class OrderRepo(Protocol):
    def add(self, order: Order) -> Order:
        """Store a new order, assigning its id; AlreadyDone when the number is taken."""
        ...

    def get(self, order_id: int) -> Order | None: ...
    def get_by_number(self, number: str) -> Order | None:
        """By merchant order number, or by the provider's order number."""
        ...

    def get_for_update(self, mch_order_no: str) -> Order | None:
        """Lock the order row (first in the design's lock order)."""
        ...

    def save(self, order: Order) -> None:
        """Write changed fields; AlreadyDone when the provider order number is taken."""
        ...

    def open_for_user(self, user_id: int) -> list[Order]:
        """Orders in 0/1 and not under review."""
        ...

    def has_disputed(self, user_id: int) -> bool: ...
    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Order]:
        """Newest first (by id), ids below `before` when given: keyset paging, no OFFSET."""
        ...

    def due_for_reconcile(
        self,
        states: Sequence[OrderState],
        changed_before: datetime | None,
        changed_after: datetime | None,
        not_since: datetime,
        limit: int,
    ) -> list[Order]:
        """Orders in `states`, not under review, last changed in the window, and not
        reconciled since `not_since`; oldest change first."""
        ...

    def claim_reconcile(self, order_id: int, now: datetime, not_since: datetime) -> bool:
        """Mark the order reconciled now unless that happened since `not_since` (one winner
        among concurrent job runners)."""
        ...

    def search(self, term: str, limit: int) -> list[Order]:
        """By merchant or provider order number (exact), or by user id when `term` is one."""
        ...

    def due_for_expiry(self, now: datetime, limit: int) -> list[Order]:
        """Open, not under review, expires_at <= now; oldest first."""
        ...


class Ledger(Protocol):
    def post(self, journal: Journal, now: datetime) -> None:
        """Append the journal and move the balances in this transaction.

        AlreadyDone when its key was posted before; InsufficientFunds when one of
        journal.floors() would end below zero. Accounts are locked in ascending id.
        """
        ...

    def balance(self, account: str) -> int: ...
    def lock_balances(self, accounts: Sequence[str]) -> dict[str, int]:
        """Lock these accounts in ascending id (the design's lock order) and return their
        latest committed balances: for a decision that must hold until the commit (approve
        must not read a snapshot a concurrent refund has already changed)."""
        ...

    def history(self, accounts: Sequence[str], before: int | None, limit: int) -> list[LedgerLine]:
        """Entries of these accounts, newest first (by entry id), ids below `before`."""
        ...

    def credited_total(self, user_id: int) -> int:
        """Net pay-in credits minus refund reversals on the user's available account."""
        ...

    def account_total(self, account: str, kinds: Sequence[JournalKind]) -> int:
        """Sum of the account's entries in journals of these kinds."""
        ...

    def kind_totals(self, kind: JournalKind) -> KindTotals: ...
    def export(self, after: int | None, limit: int) -> list[LedgerLine]:
        """Every entry, oldest first (by id), ids above `after`: for the CSV export."""
        ...

    def user_liability(self) -> int:
        """Sum of every user account's balance (what FlamePay owes its users)."""
        ...

    def entries_of(self, key: str) -> tuple[Entry, ...] | None:
        """The stored entries of a journal, or None when no journal has that key."""
        ...


class PayoutRepo(Protocol):
    def add(self, payout: Payout) -> Payout: ...
    def get(self, payout_id: int) -> Payout | None: ...
    def get_for_update(self, payout_id: int) -> Payout | None: ...
    def save(self, payout: Payout) -> None:
        """AlreadyDone when the txid is taken by another payout."""
        ...

    def pending(self, user_id: int | None = None) -> list[Payout]: ...
    def list_for_user(self, user_id: int, before: int | None, limit: int) -> list[Payout]: ...
    def totals(self) -> dict[PayoutStatus, tuple[int, int]]:
        """(count, sum of amounts) per status."""
        ...


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


class CallbackEvents(Protocol):
    def record(self, event: CallbackEvent) -> None: ...
    def count(self, outcome: str, since: datetime) -> int: ...


class Outbox(Protocol):
    def add(self, message: OutboxMessage) -> None: ...
    def pending(self, limit: int) -> list[OutboxMessage]: ...
    def mark_sent(self, message_id: int, at: datetime) -> None: ...
    def oldest_pending_at(self) -> datetime | None: ...
    def record_copy(self, ref: str, chat_id: int, message_id: int, at: datetime) -> None:
        """A Telegram message that carries `ref` (an admin's copy of a payout request)."""
        ...

    def copies(self, ref: str) -> list[tuple[int, int]]:
        """(chat_id, message_id) of every copy of `ref`, oldest first."""
        ...


class AlertLog(Protocol):
    def claim(self, key: str, now: datetime, interval_seconds: int) -> AlertClaim:
        """Sent for exactly one caller per key and interval, across processes; the others
        are counted, and the count is handed to the next one sent (then reset)."""
        ...


class ReviewRepo(Protocol):
    def open(self, review: Review) -> bool:
        """Insert unless its key exists; True when this call inserted it."""
        ...

    def for_order(self, order_id: int) -> list[Review]: ...
    def get_for_update(self, review_id: int) -> Review | None: ...
    def save(self, review: Review) -> None: ...
    def pending(self) -> list[Review]: ...


class UnitOfWork(Protocol):
    users: UserRepo
    access_codes: AccessCodeRepo
    catalogue: CatalogueRepo
    orders: OrderRepo
    ledger: Ledger
    payouts: PayoutRepo
    audit: AuditLog
    callback_events: CallbackEvents
    outbox: Outbox
    reviews: ReviewRepo
    alerts: AlertLog

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless commit() was called."""
        ...

    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

    def before_retry(self, attempt: int) -> None:
        """Called after a retryable conflict, before attempt `attempt` (2, 3, ...): the
        adapter waits with jitter and counts the retry."""
        ...


@attrs.frozen
class CreateOrderRequest:
    mch_order_no: str
    amount: int
    currency: str
    way_code: str
    subject: str
    expired_seconds: int
    ext_param: str = ""  # passed through to the gateway (sandbox drills: 'success'/'fail')


class ProviderGateway(Protocol):
    """The pay-in gateway. Errors are the typed ProviderError subclasses of flamepay.errors."""

    def create_order(self, request: CreateOrderRequest) -> ProviderReport:
        """Never retried by the adapter: a timeout raises ProviderTimeout (outcome unknown)."""
        ...

    def query_order(
        self, mch_order_no: str, provider_order_no: str | None = None
    ) -> ProviderReport:
        """ProviderUnknownOrder when the provider has no such order; ProviderBadResponse when
        the answer is about another order (another mchOrderNo, or another provider number
        than `provider_order_no` when the order has one); ProviderMerchantError when the
        provider refuses our merchant credentials."""
        ...

    def close_order(self, mch_order_no: str) -> None: ...


class Notifier(Protocol):
    """Sends one Telegram message. RecipientBlocked and RateLimited are its typed errors."""

    def send(self, chat_id: int, text: str) -> None: ...


class Eligibility(Protocol):
    """Asked by the use cases before an order is opened or a payout requested."""

    def check_open_order(self, uow: UnitOfWork, user_id: int, package: Package) -> Order | None:
        """Raise NotEligible, or return an open order to hand back instead of a new one."""
        ...

    def check_payout(self, uow: UnitOfWork, user_id: int) -> None:
        """Raise NotEligible when the user may not ask for a payout."""
        ...

    def check_user(self, uow: UnitOfWork, user_id: int) -> None:
        """Raise NotEligible when the user may not see balances, history or orders."""
        ...
