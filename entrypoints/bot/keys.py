"""Callback data: short, at most 64 bytes, and untrusted (every press is checked again)."""

from __future__ import annotations

MAX_CALLBACK_DATA = 64


def data(*parts: object) -> str:
    text = ":".join(str(p) for p in parts)
    if len(text.encode("utf-8")) > MAX_CALLBACK_DATA:
        raise ValueError(f"callback data over {MAX_CALLBACK_DATA} bytes: {text[:20]}...")
    return text


def parse(raw: str | None) -> list[str]:
    if not raw or len(raw.encode("utf-8")) > MAX_CALLBACK_DATA:
        return []
    return raw.split(":")
