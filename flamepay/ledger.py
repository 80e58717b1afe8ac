"""Double-entry ledger: accounts, journals and the balance rule.

Every journal's entries sum to zero and carry one idempotency key, so a second attempt is
recognised (AlreadyDone), never repeated. Balances are kept by the adapters in the same
transaction as the entries; the rule of which balances may not go below zero lives here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping

import attrs

from flamepay.errors import InsufficientFunds
from flamepay.money import require_cents

CLEARING = "provider:clearing"
FEES = "platform:fees"
ADJUSTMENTS = "platform:adjustments"
PAYOUTS_SENT = "payouts:sent"

_USER_ACCOUNT = re.compile(r"user:([0-9]+):(available|held)")


def available(user_id: int) -> str:
    return f"user:{int(user_id)}:available"


def held(user_id: int) -> str:
    return f"user:{int(user_id)}:held"


def is_user_account(account: str) -> bool:
    return _USER_ACCOUNT.fullmatch(account) is not None


def user_of(account: str) -> int | None:
    match = _USER_ACCOUNT.fullmatch(account)
    return int(match.group(1)) if match else None


class JournalKind(enum.Enum):
    PAYIN = "payin"
    REFUND = "refund"
    PAYOUT_HOLD = "payout-hold"
    PAYOUT_POST = "payout-post"
    PAYOUT_VOID = "payout-void"
    ADJUST = "adjust"


# "Credited in total" is the sum of net pay-in credits minus refund reversals: the entries of
# these kinds on a user's available account.
CREDITING_KINDS = (JournalKind.PAYIN, JournalKind.REFUND)


def payin_key(mch_order_no: str) -> str:
    """The idempotency key of an order's pay-in journal."""
    return f"{JournalKind.PAYIN.value}:{mch_order_no}"


def refund_key(mch_order_no: str) -> str:
    """The idempotency key of an order's refund reversal."""
    return f"{JournalKind.REFUND.value}:{mch_order_no}"


@attrs.frozen
class Entry:
    account: str
    amount: int  # signed cents: + raises the account's balance, - lowers it

    def __attrs_post_init__(self) -> None:
        require_cents(self.amount, "entry amount")


def _check_entries(
    instance: Journal, attribute: attrs.Attribute[tuple[Entry, ...]], entries: tuple[Entry, ...]
) -> None:
    if not entries:
        raise ValueError("a journal needs entries")
    if sum(e.amount for e in entries) != 0:
        raise ValueError(f"journal {instance.key} does not sum to zero")
    accounts = [e.account for e in entries]
    if len(set(accounts)) != len(accounts):
        raise ValueError(f"journal {instance.key} names an account twice")


@attrs.frozen
class Journal:
    key: str  # the idempotency key, e.g. 'payin:FP123'
    kind: JournalKind
    entries: tuple[Entry, ...] = attrs.field(validator=_check_entries)
    user_id: int | None = None
    order_id: int | None = None
    payout_id: int | None = None
    memo: str = ""

    @property
    def may_overdraw(self) -> bool:
        # Only a refund reversal may take a user's available balance below zero: the money
        # already left through a payout, and refusing the provider's refund would hide it.
        return self.kind is JournalKind.REFUND

    def floors(self) -> frozenset[str]:
        """Accounts this journal lowers that must not end below zero."""
        return frozenset(
            e.account
            for e in self.entries
            if e.amount < 0
            and is_user_account(e.account)
            and not (self.may_overdraw and e.account.endswith(":available"))
        )

    def amount_of(self, account: str) -> int:
        return sum(e.amount for e in self.entries if e.account == account)

    def credited(self) -> dict[str, int]:
        """What this journal adds to "credited in total", per user available account."""
        if self.kind not in CREDITING_KINDS:
            return {}
        return {
            e.account: e.amount
            for e in self.entries
            if is_user_account(e.account) and e.account.endswith(":available")
        }


def _entries(pairs: Iterable[tuple[str, int]]) -> tuple[Entry, ...]:
    # Zero-amount legs (a 0% fee) say nothing and are left out.
    return tuple(Entry(account, amount) for account, amount in pairs if amount != 0)


def payin(mch_order_no: str, order_id: int, user_id: int, paid: int, fee: int) -> Journal:
    return Journal(
        key=payin_key(mch_order_no),
        kind=JournalKind.PAYIN,
        entries=_entries(((CLEARING, -paid), (available(user_id), paid - fee), (FEES, fee))),
        user_id=user_id,
        order_id=order_id,
    )


def refund(
    mch_order_no: str, order_id: int, user_id: int, payin_entries: Iterable[Entry]
) -> Journal:
    """The exact negation of the stored pay-in entries; never recomputed from today's fee."""
    return Journal(
        key=refund_key(mch_order_no),
        kind=JournalKind.REFUND,
        entries=tuple(Entry(e.account, -e.amount) for e in payin_entries),
        user_id=user_id,
        order_id=order_id,
    )


def payout_hold(payout_id: int, user_id: int, amount: int) -> Journal:
    return Journal(
        key=f"payout-hold:{payout_id}",
        kind=JournalKind.PAYOUT_HOLD,
        entries=_entries(((available(user_id), -amount), (held(user_id), amount))),
        user_id=user_id,
        payout_id=payout_id,
    )


def payout_post(payout_id: int, user_id: int, amount: int, network_fee: int) -> Journal:
    return Journal(
        key=f"payout-post:{payout_id}",
        kind=JournalKind.PAYOUT_POST,
        entries=_entries(
            ((held(user_id), -amount), (PAYOUTS_SENT, amount - network_fee), (FEES, network_fee))
        ),
        user_id=user_id,
        payout_id=payout_id,
    )


def payout_void(payout_id: int, user_id: int, amount: int) -> Journal:
    return Journal(
        key=f"payout-void:{payout_id}",
        kind=JournalKind.PAYOUT_VOID,
        entries=_entries(((held(user_id), -amount), (available(user_id), amount))),
        user_id=user_id,
        payout_id=payout_id,
    )


def adjustment(adjustment_id: str, user_id: int, amount: int, reason: str) -> Journal:
    return Journal(
        key=f"adjust:{adjustment_id}",
        kind=JournalKind.ADJUST,
        entries=_entries(((ADJUSTMENTS, -amount), (available(user_id), amount))),
        user_id=user_id,
        memo=reason,
    )


def apply_to_balances(balances: Mapping[str, int], journal: Journal) -> dict[str, int]:
    """New balances after `journal`, or InsufficientFunds naming the account that would dip.

    The in-memory adapter uses this directly; the SQL adapters do the same with one
    conditional UPDATE per floored account (balance + x >= 0), which is this rule in SQL.
    """
    result = dict(balances)
    floors = journal.floors()
    for entry in journal.entries:
        new = result.get(entry.account, 0) + entry.amount
        if entry.account in floors and new < 0:
            raise InsufficientFunds(entry.account)
        result[entry.account] = new
    return result
