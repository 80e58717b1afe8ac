"""What every use case is handed: the ports and the policy, built by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import attrs

from flamepay.policy import PaymentPolicy
from flamepay.ports import (
    Clock,
    Eligibility,
    IdGenerator,
    ProviderGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from flamepay.records import AuditEntry
from flamepay.transaction import run_in_transaction

T = TypeVar("T")


@attrs.define
class Core:
    uow: UnitOfWorkFactory
    provider: ProviderGateway
    clock: Clock
    ids: IdGenerator
    policy: PaymentPolicy
    eligibility: Eligibility
    admin_ids: frozenset[int] = frozenset()
    alert_interval_minutes: int = 30

    def transaction(self, body: Callable[[UnitOfWork], T]) -> T:
        return run_in_transaction(self.uow, body)

    def now(self) -> datetime:
        return self.clock.now()

    def audit(
        self, uow: UnitOfWork, actor: str, action: str, target: str, **details: object
    ) -> None:
        uow.audit.record(AuditEntry(actor, action, target, details, self.clock.now()))

    def audit_alone(self, actor: str, action: str, target: str, **details: object) -> None:
        """Audit in a transaction of its own: for refusals, whose own unit rolled back."""

        def body(uow: UnitOfWork) -> None:
            self.audit(uow, actor, action, target, **details)

        self.transaction(body)
