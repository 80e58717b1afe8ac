"""Access codes: what a Telegram user types once to be let in."""

from __future__ import annotations

import re
from datetime import datetime

import attrs

CODE_BITS = 64  # at least 60 bits, from the id generator port (secrets in production)
_CODE_TEXT = re.compile(r"[A-Za-z0-9-]{8,40}", re.ASCII)


def normalise_code(text: str) -> str | None:
    """Codes are typed by hand: case and dashes do not matter. None when it cannot be a code."""
    cleaned = text.strip()
    if _CODE_TEXT.fullmatch(cleaned) is None:
        return None
    return cleaned.replace("-", "").upper()


@attrs.define(eq=False)
class AccessCode:
    id: int
    code: str
    max_uses: int
    created_by: int
    created_at: datetime
    expires_at: datetime | None = None
    uses: int = 0
    last_used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.uses < self.max_uses and (self.expires_at is None or self.expires_at > now)
