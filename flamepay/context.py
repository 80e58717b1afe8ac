"""What every use case is handed: the ports and the policy, built by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import attrs

from flamepay.errors import Refused
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

    def audited_transaction(
        self,
        body: Callable[[UnitOfWork], T],
        actor: str,
        refused_action: str,
        target: str,
        **details: object,
    ) -> T:
        """`transaction(body)`; a refusal (its unit rolled back) is audited in a unit of its own
        with the reason, then raised again."""
        try:
            return self.transaction(body)
        except Refused as refusal:
            self.audit_alone(actor, refused_action, target, reason=str(refusal), **details)
            raise

    def audit_alone(self, actor: str, action: str, target: str, **details: object) -> None:
        """Audit in a transaction of its own: for refusals, whose own unit rolled back."""

        def body(uow: UnitOfWork) -> None:
            self.audit(uow, actor, action, target, **details)

        self.transaction(body)
