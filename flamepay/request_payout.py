"""A user asks for a payout: the amount moves from available to held (phase one)."""

from __future__ import annotations

from flamepay import ledger, notices
from flamepay.context import Core
from flamepay.errors import InsufficientFunds, Refused
from flamepay.money import format_money, require_cents
from flamepay.payout import Network, Payout
from flamepay.payout_rules import ensure_payouts_unblocked
from flamepay.ports import UnitOfWork


def request_payout(core: Core, user_id: int, amount: int, network: Network, address: str) -> Payout:
    require_cents(amount)
    policy = core.policy
    currency = policy.currency
    fee = policy.network_fee(network)

    def body(uow: UnitOfWork) -> Payout:
        core.eligibility.check_payout(uow, user_id)
        if amount < policy.payout_min:
            raise Refused(f"The minimum payout is {format_money(policy.payout_min, currency)}.")
        if policy.payout_max and amount > policy.payout_max:
            raise Refused(f"The maximum payout is {format_money(policy.payout_max, currency)}.")
        if amount <= fee:
            raise Refused(
                f"The amount must exceed the {network.label} network fee of "
                f"{format_money(fee, currency)}."
            )
        ensure_payouts_unblocked(uow, user_id)
        now = core.now()
        payout = uow.payouts.add(Payout(0, user_id, amount, network, address, fee, now))
        try:
            uow.ledger.post(ledger.payout_hold(payout.id, user_id, amount), now)
        except InsufficientFunds:
            available = uow.ledger.balance(ledger.available(user_id))
            raise Refused(
                f"Not enough available: {format_money(available, currency)}, "
                f"asked {format_money(amount, currency)}."
            ) from None
        uow.outbox.add(notices.payout_requested(payout, currency, now))
        core.audit(
            uow,
            f"user:{user_id}",
            "payout_requested",
            f"payout:{payout.id}",
            amount=amount,
            network=network.value,
            network_fee=fee,
        )
        return payout

    return core.audited_transaction(
        body, f"user:{user_id}", "payout_request_refused", f"user:{user_id}", amount=amount
    )
