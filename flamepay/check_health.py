"""The health probe: does the database answer a read?"""

from __future__ import annotations

from flamepay.context import Core


def check_health(core: Core) -> None:
    """Raises when the database does not answer. One read in a unit of work of its own,
    left without commit (it writes nothing) and not retried (a probe answers now)."""
    with core.uow() as uow:
        uow.users.get(1)
