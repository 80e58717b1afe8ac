"""Fault alerts to the admins, each at most once per interval (ALERT_INTERVAL_MINUTES).

The interval is kept in the database (AlertLog.claim), so several processes raising the same
alert send it once. Jobs and entry points raise their failures through here.
"""

from __future__ import annotations

from flamepay import notices
from flamepay.context import Core
from flamepay.ports import UnitOfWork

DEFAULT_INTERVAL_MINUTES = 30


def raise_alert(core: Core, key: str, text: str, interval_minutes: int | None = None) -> bool:
    """True when this call sent the alert (queued it in the outbox)."""
    minutes = interval_minutes or core.alert_interval_minutes

    def body(uow: UnitOfWork) -> bool:
        now = core.now()
        if not uow.alerts.claim(key, now, minutes * 60):
            return False
        uow.outbox.add(notices.to_admins(f"fault_{key}", f"Fault: {text}", now, ref=key))
        core.audit(uow, "system", "fault_alert", key, text=text)
        return True

    return core.transaction(body)
