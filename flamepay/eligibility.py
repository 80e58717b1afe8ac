"""Who may open an order or ask for a payout: the Eligibility port's real implementation.

Activated and not banned; the package and its gateway switched on; a user asking again for
a package whose unexpired order is still open gets that order back; at most
MAX_OPEN_ORDERS open orders a user (orders under review do not count: an admin holds them).
"""

from __future__ import annotations

from collections.abc import Callable

from flamepay.catalogue import Package
from flamepay.errors import NotEligible
from flamepay.order import Order
from flamepay.policy import PaymentPolicy
from flamepay.ports import Clock, UnitOfWork

NOT_ACTIVATED = "Your account is not activated yet. Send /activate <code> with your access code."
BANNED = "Your account is banned. Contact the operator."


class AccountRules:
    def __init__(self, clock: Clock, policy: Callable[[], PaymentPolicy]) -> None:
        self._clock = clock
        self._policy = policy  # read per call: the policy in force may change at runtime

    def check_user(self, uow: UnitOfWork, user_id: int) -> None:
        user = uow.users.get(user_id)
        if user is not None and user.banned:
            raise NotEligible(BANNED)
        if user is None or not user.activated:
            raise NotEligible(NOT_ACTIVATED)

    def check_open_order(self, uow: UnitOfWork, user_id: int, package: Package) -> Order | None:
        self.check_user(uow, user_id)
        gateway = uow.catalogue.gateway(package.way_code)
        if not package.enabled or gateway is None or not gateway.enabled:
            raise NotEligible("That package is not available.")
        now = self._clock.now()
        open_orders = uow.orders.open_for_user(user_id)
        for order in sorted(open_orders, key=lambda o: o.id, reverse=True):
            if order.package_id == package.id and order.expires_at > now:
                return order
        limit = self._policy().max_open_orders
        if len(open_orders) >= limit:
            raise NotEligible(
                f"You have {len(open_orders)} unpaid orders (at most {limit}). "
                "Pay or /cancel one first."
            )
        return None

    def check_payout(self, uow: UnitOfWork, user_id: int) -> None:
        self.check_user(uow, user_id)
