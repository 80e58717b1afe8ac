"""What the provider says about one order, from a notify, a query or a create response."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from flamepay.money import require_cents
from flamepay.order import OrderState


class ReportSource(enum.Enum):
    NOTIFY = "notify"
    QUERY = "query"  # verify-by-query, /status checks, cancel/expiry fallbacks
    RECONCILE = "reconcile"
    CREATE = "create"  # the create response: matched by order number only, never credits
    CLOSE = "close"  # a successful close at the provider: state 6
    ADMIN = "admin"

    @property
    def carries_amounts(self) -> bool:
        return self in (ReportSource.NOTIFY, ReportSource.QUERY, ReportSource.RECONCILE)

    @property
    def answers_a_query(self) -> bool:
        """The gateway's own answer to a question we asked, over our signed connection; a
        notify is not (a payer may replay a validly signed copy of one)."""
        return self in (ReportSource.QUERY, ReportSource.RECONCILE)


@attrs.frozen
class ProviderReport:
    mch_order_no: str
    state: OrderState = attrs.field(converter=OrderState)
    amount: int | None = None
    real_amount: int | None = None
    currency: str | None = None
    merchant: str | None = None
    provider_order_no: str | None = None
    cashier_url: str | None = None
    raw: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in ("amount", "real_amount"):
            value = getattr(self, name)
            if value is not None:
                require_cents(value, name)
