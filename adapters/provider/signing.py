"""The gateway's MD5 signature: one implementation for the client, the notify verifier and
the sandbox.

Every parameter but `sign`, without null and "" values; booleans as true/false; nested
objects as compact JSON with keys sorted and empty members dropped; other values as their
plain string. Fragments `k=v&` sorted case-insensitively, then `key=<KEY>`; MD5, uppercase.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

# An MD5 in hex, ASCII only ('ﬀ'.upper() is 'FF': upper-casing first would let it through).
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}", re.ASCII)
# A lone surrogate (JSON's "\ud800") has no UTF-8 form: such a value can never be signed.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _prune(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("the gateway's amounts are integers; a float is never signed")
    if isinstance(value, Mapping):
        return {str(k): _prune(v) for k, v in value.items() if not _is_empty(v)}
    if isinstance(value, list | tuple):
        return [_prune(v) for v in value]
    return value


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(_prune(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, float):
        raise TypeError("the gateway's amounts are integers; a float is never signed")
    return str(value)


def canonical(params: Mapping[str, Any], key: str) -> str:
    fragments = [
        f"{name}={render(value)}&"
        for name, value in params.items()
        if name != "sign" and not _is_empty(value)
    ]
    fragments.sort(key=lambda f: (f.lower(), f))
    return "".join(fragments) + f"key={key}"


def sign(params: Mapping[str, Any], key: str) -> str:
    """ValueError for what cannot be signed, never carrying the canonical string: it ends
    with the key (a UnicodeEncodeError would hold all of it in its `object`)."""
    if not key:
        raise ValueError("no signing key")
    try:
        text = canonical(params, key)
    except RecursionError:
        raise ValueError("a value to sign is nested too deep") from None
    if _SURROGATE.search(text):  # checked before encoding, so no exception holds the text
        raise ValueError("a value to sign is not valid Unicode (a lone surrogate)")
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def verify(params: Mapping[str, Any], key: str, signature: object) -> bool:
    """Recompute over every received field but `sign`; constant-time compare."""
    if not key or not isinstance(signature, str) or _HEX32.fullmatch(signature) is None:
        return False
    try:
        expected = sign(params, key)
    except (TypeError, ValueError):  # a float, a lone surrogate, too deep: never ours
        return False
    return hmac.compare_digest(expected.encode(), signature.upper().encode("ascii"))


def signed(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A copy of params with its `sign` added."""
    body = {k: v for k, v in params.items() if k != "sign"}
    body["sign"] = sign(body, key)
    return body
