"""USDT payout addresses: TRC20 (TRON, base58check) and BEP20 (BNB Smart Chain, EIP-55).

`check_address` answers the normalised address (surrounding whitespace stripped) or raises
Refused with a message that says what is expected. Pure: stdlib only (hashlib for sha256,
and Keccak-256 written out here because hashlib's sha3_256 pads differently).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from flamepay.errors import Refused

if TYPE_CHECKING:
    from flamepay.payout import Network

MAX_INPUT = 100  # characters; anything longer is refused before any decoding

TRC20_EXPECTED = "Expected a TRC20 address: 34 characters starting with T (base58check)."
TRC20_CHECKSUM = "That TRC20 address has a wrong checksum; copy it again."
BEP20_EXPECTED = "Expected a BEP20 address: 0x followed by 40 hex digits."
BEP20_CHECKSUM = "That BEP20 address has a wrong checksum (EIP-55); copy it again."
NETWORK_EXPECTED = "Expected a network: TRC20 or BEP20."

_EXPECTED = {"TRC20": TRC20_EXPECTED, "BEP20": BEP20_EXPECTED}


def check_address(network: str | Network, text: str) -> str:
    """The address in `text` for `network` ("TRC20", "BEP20" or a payout.Network), stripped."""
    name = getattr(network, "value", network)
    if name not in _EXPECTED:
        raise Refused(NETWORK_EXPECTED)
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise Refused(_EXPECTED[name])
    address = text.strip()
    if not address.isascii():
        raise Refused(_EXPECTED[name])
    if name == "TRC20":
        _check_trc20(address)
    else:
        _check_bep20(address)
    return address


# --- TRC20: base58check over 0x41 + 20 bytes ------------------------------------------------------

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_VALUE = {char: index for index, char in enumerate(BASE58_ALPHABET)}
TRON_PREFIX = 0x41
TRC20_LENGTH = 34  # every 25-byte value starting with 0x41 encodes to exactly 34 characters


def base58check_checksum(payload: bytes) -> bytes:
    """The first 4 bytes of sha256(sha256(payload))."""
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def _check_trc20(address: str) -> None:
    if len(address) != TRC20_LENGTH or any(char not in _BASE58_VALUE for char in address):
        raise Refused(TRC20_EXPECTED)
    number = 0
    for char in address:
        number = number * 58 + _BASE58_VALUE[char]
    # 58**34 < 2**200, so 34 characters always fit in 25 bytes; a leading "1" gives a 0x00 byte.
    raw = number.to_bytes(25, "big")
    payload, checksum = raw[:21], raw[21:]
    if payload[0] != TRON_PREFIX:
        raise Refused(TRC20_EXPECTED)
    if base58check_checksum(payload) != checksum:
        raise Refused(TRC20_CHECKSUM)


# --- BEP20: 0x + 40 hex digits, EIP-55 mixed-case checksum --------------------------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _hex_body(address: str) -> str:
    """The 40 hex digits after "0x" (the prefix optional), or Refused."""
    body = address.removeprefix("0x")
    if len(body) != 40 or any(char not in _HEX_DIGITS for char in body):
        raise Refused(BEP20_EXPECTED)
    return body


def _check_bep20(address: str) -> None:
    if not address.startswith("0x"):
        raise Refused(BEP20_EXPECTED)
    body = _hex_body(address)
    if body in (body.lower(), body.upper()):
        return  # one case throughout: no checksum to check
    if to_checksum_address(body)[2:] != body:
        raise Refused(BEP20_CHECKSUM)


def to_checksum_address(hex_address: str) -> str:
    """EIP-55: "0x" + the 40 digits, a letter upper-cased where its keccak nibble is >= 8."""
    if not isinstance(hex_address, str) or not hex_address.isascii():
        raise Refused(BEP20_EXPECTED)
    lower = _hex_body(hex_address.strip()).lower()
    nibbles = keccak_256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if int(nibble, 16) >= 8 else char
        for char, nibble in zip(lower, nibbles, strict=False)
    )


# --- Keccak-256 (the pre-SHA-3 padding Ethereum uses) -------------------------------------------

_MASK = (1 << 64) - 1
_ROUND_CONSTANTS = (
    0x0000000000000001,
    0x0000000000008082,
    0x800000000000808A,
    0x8000000080008000,
    0x000000000000808B,
    0x0000000080000001,
    0x8000000080008081,
    0x8000000000008009,
    0x000000000000008A,
    0x0000000000000088,
    0x0000000080008009,
    0x000000008000000A,
    0x000000008000808B,
    0x800000000000008B,
    0x8000000000008089,
    0x8000000000008003,
    0x8000000000008002,
    0x8000000000000080,
    0x000000000000800A,
    0x800000008000000A,
    0x8000000080008081,
    0x8000000000008080,
    0x0000000080000001,
    0x8000000080008008,
)
# Rotation offsets r[x][y] of the rho step; lane (x, y) is state[x + 5 * y].
_ROTATIONS = (
    (0, 36, 3, 41, 18),
    (1, 44, 10, 45, 2),
    (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56),
    (27, 20, 39, 8, 14),
)
_RATE = 136  # bytes: 1088 bits; capacity 512


def _rotl(lane: int, shift: int) -> int:
    return ((lane << shift) | (lane >> (64 - shift))) & _MASK


def _keccak_f1600(state: list[int]) -> list[int]:
    """The 24-round permutation of 25 64-bit lanes."""
    for constant in _ROUND_CONSTANTS:
        # theta: each lane takes the parity of two neighbouring columns
        column = [
            state[x] ^ state[x + 5] ^ state[x + 10] ^ state[x + 15] ^ state[x + 20]
            for x in range(5)
        ]
        effect = [column[(x - 1) % 5] ^ _rotl(column[(x + 1) % 5], 1) for x in range(5)]
        state = [lane ^ effect[i % 5] for i, lane in enumerate(state)]
        # rho and pi: lane (x, y) rotated by r[x][y] moves to (y, 2x + 3y)
        moved = [0] * 25
        for x in range(5):
            for y in range(5):
                moved[y + 5 * ((2 * x + 3 * y) % 5)] = _rotl(state[x + 5 * y], _ROTATIONS[x][y])
        # chi: the only non-linear step, along each row
        state = [
            moved[i] ^ (~moved[5 * (i // 5) + (i + 1) % 5] & moved[5 * (i // 5) + (i + 2) % 5])
            for i in range(25)
        ]
        # iota
        state[0] ^= constant
    return state


def _sponge(data: bytes, suffix: int) -> bytes:
    """32 bytes out of the rate-136 sponge; `suffix` 0x01 is Keccak, 0x06 is SHA3-256."""
    padded = bytearray(data)
    padded.append(suffix)
    padded.extend(bytes(-len(padded) % _RATE))
    padded[-1] |= 0x80
    state = [0] * 25
    for start in range(0, len(padded), _RATE):
        block = padded[start : start + _RATE]
        for i in range(_RATE // 8):
            state[i] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        state = _keccak_f1600(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state[:4])


def keccak_256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (padding 0x01 ... 0x80), not hashlib.sha3_256."""
    return _sponge(bytes(data), 0x01)
