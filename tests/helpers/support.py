"""Builds a Core on the in-memory adapters and the fake provider, for the core's tests."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from adapters.fake_provider import FakeProvider
from adapters.memory import AllowAll, ManualClock, MemoryUnitOfWorkFactory, SequentialIds
from entrypoints.bootstrap import build_core
from flamepay import ledger
from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.policy import PaymentPolicy
from flamepay.ports import UnitOfWork

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MERCHANT = "M100"


@attrs.define
class World:
    core: Core
    uow: MemoryUnitOfWorkFactory
    provider: FakeProvider
    clock: ManualClock

    def read(self, fn):
        """Run fn(uow) in a transaction that is not committed."""
        with self.uow() as uow:
            return fn(uow)

    def balance(self, account: str) -> int:
        return self.read(lambda uow: uow.ledger.balance(account))

    def available(self, user_id: int) -> int:
        return self.balance(ledger.available(user_id))

    def held(self, user_id: int) -> int:
        return self.balance(ledger.held(user_id))

    def order(self, number: str):
        return self.read(lambda uow: uow.orders.get_by_number(number))

    def add_package(self, amount: int, way_code: str = "ALI_QR") -> int:
        def body(uow: UnitOfWork) -> int:
            if uow.catalogue.gateway(way_code) is None:
                uow.catalogue.save_gateway(Gateway(way_code, way_code.title()))
            return uow.catalogue.add_package(Package(0, way_code, f"{amount}", amount)).id

        return self.core.transaction(body)

    def set_policy(self, **changes) -> None:
        self.core.policy = attrs.evolve(self.core.policy, **changes)

    @property
    def state(self):
        return self.uow.state


ADMINS = frozenset({1, 2})


def make_world(admins: frozenset[int] = ADMINS, **policy: object) -> World:
    uow = MemoryUnitOfWorkFactory()
    provider = FakeProvider(merchant=MERCHANT)
    clock = ManualClock(START)
    core = build_core(
        uow,
        provider,
        PaymentPolicy(merchant_no=MERCHANT, **policy),
        clock=clock,
        ids=SequentialIds(),
        eligibility=AllowAll(),
        admin_ids=admins,
    )
    return World(core, uow, provider, clock)
