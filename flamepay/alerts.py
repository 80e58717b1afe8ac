"""Fault alerts to the admins, each at most once per interval (ALERT_INTERVAL_MINUTES).

The interval is kept in the database (AlertLog.claim), so several processes raising the same
alert send it once. Jobs and entry points raise their failures through here.
"""

from __future__ import annotations

from flamepay import notices
from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.records import OutboxMessage

DEFAULT_INTERVAL_MINUTES = 30


def raise_alert(core: Core, key: str, text: str, interval_minutes: int | None = None) -> bool:
    """True when this call sent the alert (queued it in the outbox)."""
    minutes = interval_minutes or core.alert_interval_minutes

    def body(uow: UnitOfWork) -> bool:
        now = core.now()
        message = notices.to_admins(f"fault_{key}", f"Fault: {text}", now, ref=key)
        sent = alert_once(uow, core, key, message, "system", minutes)
        if sent:
            core.audit(uow, "system", "fault_alert", key, text=text)
        return sent

    return core.transaction(body)


def alert_once(
    uow: UnitOfWork,
    core: Core,
    key: str,
    message: OutboxMessage,
    actor: str,
    interval_minutes: int | None = None,
) -> bool:
    """Queue `message` unless an alert with this key went out within the interval. A held
    back repeat is audited with its count, and the next alert sent says how many there were:
    a storm of replays becomes one message, and is never silent."""
    minutes = interval_minutes or core.alert_interval_minutes
    claim = uow.alerts.claim(key, core.now(), minutes * 60)
    if not claim.sent:
        core.audit(uow, actor, "alert_suppressed", key, kind=message.kind, repeats=claim.repeats)
        return False
    if claim.repeats:
        message.text += f" (Repeated {claim.repeats} more times since the last alert.)"
    uow.outbox.add(message)
    return True
