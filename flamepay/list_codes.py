"""An admin lists the recent access codes and how much each was used."""

from __future__ import annotations

from flamepay.access_code import AccessCode
from flamepay.admin import require_admin
from flamepay.context import Core

DEFAULT_LIMIT = 20


def list_codes(core: Core, admin_id: int, limit: int = DEFAULT_LIMIT) -> list[AccessCode]:
    require_admin(core, admin_id, "codes")
    return core.transaction(lambda uow: uow.access_codes.recent(max(1, min(limit, 100))))
