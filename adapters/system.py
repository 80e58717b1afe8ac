"""The real clock and the secrets-based id generator."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: codes are read off screens and typed by hand.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
ORDER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SecretIds:
    def order_number(self) -> str:
        # 'FP' + 18 characters of a 32-letter alphabet: 90 bits, far from any collision.
        return "FP" + "".join(secrets.choice(ORDER_ALPHABET) for _ in range(18))

    def access_code(self, bits: int) -> str:
        length = math.ceil(bits / math.log2(len(CODE_ALPHABET)))
        return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))

    def token(self) -> str:
        return secrets.token_hex(12)
