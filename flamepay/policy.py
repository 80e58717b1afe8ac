"""The payment rules in force, built from settings by the composition root."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from flamepay.money import normalise_currency, require_cents
from flamepay.payout import Network


def _cents(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    require_cents(value, attribute.name)


@attrs.frozen
class PaymentPolicy:
    currency: str = attrs.field(default="USD", converter=normalise_currency)
    fee_bp: int = attrs.field(default=1500, validator=_cents)  # GLOBAL_FEE_PERCENT as basis points
    merchant_no: str = ""  # the mchNo a report must carry (empty: not checked)
    order_expire_minutes: int = 30
    payout_min: int = attrs.field(default=10_00, validator=_cents)
    payout_max: int = attrs.field(default=1000_00, validator=_cents)  # 0: no maximum
    payout_fees: Mapping[Network, int] = attrs.field(factory=dict)
    max_open_orders: int = 3
    package_max: int = attrs.field(default=10_000_00, validator=_cents)
    activation_attempts: int = 5  # failed /activate per user per window
    activation_window_minutes: int = 10

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.fee_bp <= 10_000:
            raise ValueError("fee_bp must be 0..10000")
        for fee in self.payout_fees.values():
            require_cents(fee, "payout fee")

    def network_fee(self, network: Network) -> int:
        return self.payout_fees.get(network, 0)

    @property
    def expired_time_seconds(self) -> int:
        """What the provider is sent as `expiredTime`: minutes x 60 clamped to 1800-86400."""
        return min(max(self.order_expire_minutes * 60, 1800), 86400)
