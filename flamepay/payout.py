"""Payouts: USDT sent by hand after an admin approves; a two-phase transfer in the ledger."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from flamepay.errors import AlreadyResolved, Refused
from flamepay.money import require_cents


class Network(enum.Enum):
    TRC20 = "TRC20"
    BEP20 = "BEP20"

    @property
    def label(self) -> str:
        return f"USDT {self.value}"

    @classmethod
    def parse(cls, text: str) -> Network:
        cleaned = text.strip().upper().removeprefix("USDT").strip(" _-")
        try:
            return cls(cleaned)
        except ValueError:
            raise Refused("Expected a network: TRC20 or BEP20.") from None


class PayoutStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@attrs.define(eq=False)
class Payout:
    id: int
    user_id: int
    amount: int  # what leaves the user's balance
    network: Network
    address: str
    network_fee: int  # in force when requested, used at approval
    created_at: datetime
    status: PayoutStatus = PayoutStatus.PENDING
    resolved_by: int | None = None
    resolved_at: datetime | None = None
    txid: str | None = None
    note: str = ""

    def __attrs_post_init__(self) -> None:
        require_cents(self.amount)
        require_cents(self.network_fee, "network fee")

    @property
    def to_receive(self) -> int:
        return self.amount - self.network_fee

    def _resolve(self, status: PayoutStatus, admin_id: int, now: datetime, note: str) -> None:
        if self.status is not PayoutStatus.PENDING:
            raise AlreadyResolved(
                f"Payout #{self.id} was already {self.status.value}"
                + (f" by {self.resolved_by}" if self.resolved_by is not None else "")
                + "."
            )
        self.status = status
        self.resolved_by = admin_id
        self.resolved_at = now
        self.note = note

    def approve(self, admin_id: int, now: datetime, txid: str | None, note: str = "") -> None:
        self._resolve(PayoutStatus.APPROVED, admin_id, now, note)
        self.txid = txid or None

    def reject(self, admin_id: int, now: datetime, reason: str) -> None:
        self._resolve(PayoutStatus.REJECTED, admin_id, now, reason)
