"""Admin rights, checked in the core too: an entry point that forgets cannot open a hole."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.errors import Refused


class NotAllowed(Refused):
    """A non-admin tried an admin action."""


def require_admin(core: Core, actor_id: int, action: str, target: str = "") -> None:
    if actor_id in core.admin_ids:
        return
    # The refusal is audited in its own transaction: nothing else of the action ran.
    core.audit_alone(f"user:{actor_id}", "admin_action_refused", target or action, command=action)
    raise NotAllowed("Not allowed: this is an admin command.")
