"""An admin generates access codes: single- or multi-use, optionally expiring."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flamepay.access_code import CODE_BITS, AccessCode
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import AlreadyDone, Refused
from flamepay.ports import UnitOfWork

MAX_COUNT = 50
MAX_USES = 100_000


def generate_codes(
    core: Core, admin_id: int, uses: int = 1, expires_on: date | None = None, count: int = 1
) -> list[AccessCode]:
    require_admin(core, admin_id, "gencode")
    if not 1 <= count <= MAX_COUNT:
        raise Refused(f"Expected a count from 1 to {MAX_COUNT}; got {count}.")
    if not 1 <= uses <= MAX_USES:
        raise Refused(f"Expected uses from 1 to {MAX_USES}; got {uses}.")
    now = core.now()
    expires_at = None
    if expires_on is not None:
        # A code is good through the whole day it names (UTC).
        expires_at = datetime.combine(expires_on + timedelta(days=1), time(0), tzinfo=UTC)
        if expires_at <= now:
            raise Refused(f"The expiry date {expires_on.isoformat()} is in the past.")

    def body(uow: UnitOfWork) -> list[AccessCode]:
        made = []
        for _ in range(count):
            code = AccessCode(0, core.ids.access_code(CODE_BITS), uses, admin_id, now, expires_at)
            try:
                made.append(uow.access_codes.add(code))
            except AlreadyDone:  # pragma: no cover - 64 random bits do not collide in practice
                raise Refused("A generated code collided; run the command again.") from None
        core.audit(
            uow,
            f"admin:{admin_id}",
            "codes_generated",
            "codes",
            count=count,
            uses=uses,
            code_ids=[c.id for c in made],
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return made

    return core.transaction(body)
