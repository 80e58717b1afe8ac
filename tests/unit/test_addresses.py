"""Payout addresses: Keccak-256, EIP-55 (BEP20) and TRON base58check (TRC20)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flamepay.addresses import (
    BEP20_CHECKSUM,
    BEP20_EXPECTED,
    MAX_INPUT,
    NETWORK_EXPECTED,
    TRC20_CHECKSUM,
    TRC20_EXPECTED,
    _sponge,
    check_address,
    keccak_256,
    to_checksum_address,
)
from flamepay.errors import Refused
from flamepay.payout import Network

# --- an independent Keccak: the Keccak team's compact reference, byte-wise sponge -----------------


def _ref_rol(value: int, shift: int) -> int:
    shift %= 64
    return ((value >> (64 - shift)) + (value << shift)) % (1 << 64)


def _ref_keccak_f1600(state: bytearray) -> bytearray:
    """Keccak-f[1600] on lanes[x][y]; constants from the LFSR, offsets from the t-walk."""
    lanes = [
        [int.from_bytes(state[8 * (x + 5 * y) : 8 * (x + 5 * y) + 8], "little") for y in range(5)]
        for x in range(5)
    ]
    lfsr = 1
    for _ in range(24):
        c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        d = [c[(x + 4) % 5] ^ _ref_rol(c[(x + 1) % 5], 1) for x in range(5)]
        lanes = [[lanes[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        x, y = 1, 0
        current = lanes[x][y]
        for t in range(24):
            x, y = y, (2 * x + 3 * y) % 5
            current, lanes[x][y] = lanes[x][y], _ref_rol(current, (t + 1) * (t + 2) // 2)
        for y in range(5):
            row = [lanes[x][y] for x in range(5)]
            for x in range(5):
                lanes[x][y] = row[x] ^ ((~row[(x + 1) % 5]) & row[(x + 2) % 5])
        for j in range(7):
            lfsr = ((lfsr << 1) ^ ((lfsr >> 7) * 0x71)) % 256
            if lfsr & 2:
                lanes[0][0] ^= 1 << ((1 << j) - 1)
    out = bytearray(200)
    for x in range(5):
        for y in range(5):
            out[8 * (x + 5 * y) : 8 * (x + 5 * y) + 8] = lanes[x][y].to_bytes(8, "little")
    return out


def _ref_keccak(data: bytes, suffix: int, rate: int = 136, out: int = 32) -> bytes:
    state = bytearray(200)
    offset = block = 0
    while offset < len(data):
        block = min(len(data) - offset, rate)
        for i in range(block):
            state[i] ^= data[offset + i]
        offset += block
        if block == rate:
            state = _ref_keccak_f1600(state)
            block = 0
    state[block] ^= suffix
    state[rate - 1] ^= 0x80
    state = _ref_keccak_f1600(state)
    return bytes(state[:out])


# --- Keccak-256 -----------------------------------------------------------------------------------

KNOWN_KECCAK = [
    (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    (
        b"The quick brown fox jumps over the lazy dog",
        "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15",
    ),
]
# Around the 136-byte block: 135 makes the pad a single 0x81 byte, 136 a whole extra block.
LENGTHS = [0, 1, 55, 134, 135, 136, 137, 271, 272, 273, 1000]


@pytest.mark.parametrize(("data", "digest"), KNOWN_KECCAK)
def test_keccak_256_known_answers(data: bytes, digest: str) -> None:
    assert keccak_256(data).hex() == digest


def test_keccak_256_is_not_sha3_256() -> None:
    assert keccak_256(b"abc") != hashlib.sha3_256(b"abc").digest()


@pytest.mark.parametrize("length", LENGTHS)
def test_the_reference_is_sha3_with_sha3_padding(length: int) -> None:
    """The test's own sponge, given SHA-3's 0x06, matches hashlib: the reference is right."""
    data = bytes(range(256)) * 4
    data = data[:length]
    assert _ref_keccak(data, 0x06) == hashlib.sha3_256(data).digest()


@pytest.mark.parametrize("length", LENGTHS)
def test_the_module_sponge_is_sha3_with_sha3_padding(length: int) -> None:
    """Same permutation and multi-block absorption as hashlib's SHA3-256; only the pad differs."""
    data = bytes((7 * i + 3) % 256 for i in range(length))
    assert _sponge(data, 0x06) == hashlib.sha3_256(data).digest()


@pytest.mark.parametrize("length", LENGTHS)
def test_keccak_256_multi_block_matches_the_reference(length: int) -> None:
    data = bytes((7 * i + 3) % 256 for i in range(length))
    assert keccak_256(data) == _ref_keccak(data, 0x01)


def test_keccak_256_of_a_million_a_style_long_input() -> None:
    """A long input (10 000 bytes, 74 blocks): the module and the reference agree."""
    data = b"a" * 10_000
    assert keccak_256(data) == _ref_keccak(data, 0x01)
    assert keccak_256(data) != keccak_256(data[:-1])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=420))
def test_keccak_256_matches_the_reference_on_any_input(data: bytes) -> None:
    assert keccak_256(data) == _ref_keccak(data, 0x01)


# --- BEP20 / EIP-55 -------------------------------------------------------------------------------

EIP55_VECTORS = [
    # from EIP-55 itself (all caps, all lower, then normal mixed case)
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
MIXED = EIP55_VECTORS[4:]


def _flip(text: str, index: int) -> str:
    return text[:index] + text[index].swapcase() + text[index + 1 :]


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_eip55_vectors_validate_and_are_reproduced(address: str) -> None:
    assert check_address("BEP20", address) == address
    assert check_address(Network.BEP20, address) == address
    assert to_checksum_address(address.lower()) == address
    assert to_checksum_address(address.upper()[2:]) == address  # without 0x, upper case in


@pytest.mark.parametrize("address", MIXED)
def test_flipping_any_letters_case_breaks_the_checksum(address: str) -> None:
    letters = [i for i in range(2, 42) if address[i].isalpha()]
    assert letters
    for index in letters:
        with pytest.raises(Refused) as refused:
            check_address("BEP20", _flip(address, index))
        assert str(refused.value) == BEP20_CHECKSUM


@pytest.mark.parametrize("address", MIXED)
def test_single_case_forms_need_no_checksum(address: str) -> None:
    lower = "0x" + address[2:].lower()
    upper = "0x" + address[2:].upper()
    assert check_address("BEP20", lower) == lower
    assert check_address("BEP20", upper) == upper


@pytest.mark.parametrize(
    "text",
    [
        "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # no 0x
        "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # 0X
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",  # 39 digits
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0",  # 41 digits
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg",  # g is not hex
        "0x5aaeb6053f3e94c9b9a09f33669435e7 f1beaed",  # inner space
        "0x",
        "",
        "   ",
        "0x0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea",
        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",  # a TRON address on the wrong network
    ],
)
def test_bep20_shape_refused(text: str) -> None:
    with pytest.raises(Refused) as refused:
        check_address("BEP20", text)
    assert str(refused.value) == BEP20_EXPECTED


@pytest.mark.parametrize(
    "text",
    [
        "0х5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",  # Cyrillic х
        "0x5аaeb6053f3e94c9b9a09f33669435e7ef1beaed",  # Cyrillic а
        "0x５aaeb6053f3e94c9b9a09f33669435e7ef1beaed",  # fullwidth 5
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae\u0661",  # Arabic-Indic one
    ],
)
def test_bep20_non_ascii_look_alikes_refused(text: str) -> None:
    assert len(text) == 42
    with pytest.raises(Refused) as refused:
        check_address("BEP20", text)
    assert str(refused.value) == BEP20_EXPECTED


@pytest.mark.parametrize(
    "bad", ["", "0x", "0x1234", "zz" * 20, "0X" + "0" * 40, "0х" + "0" * 40, None]
)
def test_to_checksum_address_refuses_what_is_not_40_hex_digits(bad: object) -> None:
    with pytest.raises(Refused):
        to_checksum_address(bad)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksummed_random_addresses_validate_and_round_trip(payload: bytes) -> None:
    address = to_checksum_address(payload.hex())
    assert len(address) == 42 and address.startswith("0x")
    assert bytes.fromhex(address[2:]) == payload
    assert check_address("BEP20", address) == address
    assert to_checksum_address(address) == address
    assert to_checksum_address(address.upper()[2:]) == address
    # EIP-55 itself: a letter is upper case exactly when its keccak nibble is >= 8
    nibbles = keccak_256(payload.hex().encode()).hex()
    for char, nibble in zip(address[2:], nibbles, strict=False):
        if char.isalpha():
            assert char.isupper() == (int(nibble, 16) >= 8)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(min_value=2, max_value=41))
def test_a_case_flip_is_refused_unless_it_leaves_one_case(payload: bytes, index: int) -> None:
    address = to_checksum_address(payload.hex())
    assume(address[index].isalpha())
    flipped = _flip(address, index)
    body = flipped[2:]
    if body in (body.lower(), body.upper()):
        assert check_address("BEP20", flipped) == flipped
    else:
        with pytest.raises(Refused) as refused:
            check_address("BEP20", flipped)
        assert str(refused.value) == BEP20_CHECKSUM


# --- TRC20 / base58check --------------------------------------------------------------------------

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = ALPHABET[digit] + digits
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + digits


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + ALPHABET.index(char)
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def tron(body: bytes, prefix: int = 0x41) -> str:
    payload = bytes([prefix]) + body
    return b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


def checksum_holds(text: str) -> bool:
    raw = b58decode(text)
    payload = raw[:-4]
    return (
        len(raw) == 25
        and payload[0] == 0x41
        and hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == raw[-4:]
    )


USDT_CONTRACT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
CONSTRUCTED = [
    tron(bytes(20)),
    tron(b"\xff" * 20),
    tron(bytes(range(20))),
    tron(hashlib.sha256(b"flamepay").digest()[:20]),
]


def test_the_test_encoder_agrees_with_known_tron_addresses() -> None:
    assert tron(bytes.fromhex("a614f803b6fd780986a42c78ec9c7f77e6ded13c")) == USDT_CONTRACT
    assert tron(bytes(20)) == "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"  # the well-known zero address


@pytest.mark.parametrize("address", [USDT_CONTRACT, *CONSTRUCTED])
def test_tron_addresses_validate(address: str) -> None:
    assert len(address) == 34 and address[0] == "T"
    assert check_address("TRC20", address) == address
    assert check_address(Network.TRC20, address) == address


@pytest.mark.parametrize("index", [1, 10, 20, 33])
def test_a_one_character_change_fails_the_checksum(index: int) -> None:
    char = USDT_CONTRACT[index]
    other = ALPHABET[(ALPHABET.index(char) + 1) % 58]
    changed = USDT_CONTRACT[:index] + other + USDT_CONTRACT[index + 1 :]
    with pytest.raises(Refused) as refused:
        check_address("TRC20", changed)
    assert str(refused.value) == TRC20_CHECKSUM


@pytest.mark.parametrize(
    "text",
    [
        tron(bytes(range(20)), prefix=0x42),  # good base58check, not a TRON payload
        tron(bytes(range(20)), prefix=0x00),  # Bitcoin-style version byte: starts with 1
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # a Bitcoin address, 34 characters
        USDT_CONTRACT[:-1],  # 33
        USDT_CONTRACT + "t",  # 35
        tron(bytes(19)),  # 0x41 + 19 bytes
        tron(bytes(21)),  # 0x41 + 21 bytes
        "",
        "T",
        "0xa614f803b6fd780986a42c78ec9c7f77e6ded13c",  # BEP20 form on the wrong network
        "TR7NHqjeKQxGTCi8q8ZY4pL8o SzgjLj6t",  # inner space
    ],
)
def test_trc20_shape_refused(text: str) -> None:
    with pytest.raises(Refused) as refused:
        check_address("TRC20", text)
    assert str(refused.value) == TRC20_EXPECTED


def test_the_wrong_prefix_is_refused_although_its_checksum_is_good() -> None:
    address = tron(bytes(range(20)), prefix=0x42)
    assert len(address) == 34
    assert b58decode(address)[0] == 0x42  # and the checksum over it is right
    with pytest.raises(Refused, match="Expected a TRC20"):
        check_address("TRC20", address)


@pytest.mark.parametrize("bad", ["0", "O", "I", "l"])
@pytest.mark.parametrize("index", [1, 17, 33])
def test_characters_outside_base58_refused(bad: str, index: int) -> None:
    text = USDT_CONTRACT[:index] + bad + USDT_CONTRACT[index + 1 :]
    assert len(text) == 34
    with pytest.raises(Refused) as refused:
        check_address("TRC20", text)
    assert str(refused.value) == TRC20_EXPECTED


@pytest.mark.parametrize(
    "text",
    [
        "\u0422R7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",  # Cyrillic Т
        "TR7NHqjeKQxGTCi8q8ZY4pL8\u043etSzgjLj6t",  # Cyrillic о
        "TR7NHqjeKQxGTCi8q8ZY4pL８otSzgjLj6t",  # fullwidth 8
    ],
)
def test_trc20_non_ascii_look_alikes_refused(text: str) -> None:
    assert len(text) == 34
    with pytest.raises(Refused) as refused:
        check_address("TRC20", text)
    assert str(refused.value) == TRC20_EXPECTED


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.integers(min_value=0, max_value=33),
    st.sampled_from(ALPHABET),
)
def test_random_tron_addresses_and_substitutions(body: bytes, index: int, char: str) -> None:
    address = tron(body)
    assert check_address("TRC20", address) == address
    assume(address[index] != char)
    changed = address[:index] + char + address[index + 1 :]
    if checksum_holds(changed):  # a 1 in 2**32 collision: then it must pass
        assert check_address("TRC20", changed) == changed
    else:
        with pytest.raises(Refused) as refused:
            check_address("TRC20", changed)
        expected = TRC20_CHECKSUM if b58decode(changed)[0] == 0x41 else TRC20_EXPECTED
        assert str(refused.value) == expected


# --- both networks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "address"),
    [("TRC20", USDT_CONTRACT), ("BEP20", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")],
)
def test_surrounding_whitespace_is_stripped(network: str, address: str) -> None:
    assert check_address(network, f"  \t{address}\n ") == address
    assert check_address(network, f"\n{address}\r\n") == address


@pytest.mark.parametrize(
    ("network", "address"),
    [("TRC20", USDT_CONTRACT), ("BEP20", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")],
)
def test_input_is_bounded_before_decoding(network: str, address: str) -> None:
    padded = address + " " * (MAX_INPUT - len(address))
    assert check_address(network, padded) == address  # exactly at the bound: fine
    for text in (padded + " ", "T" * 10_000_000, "0x" + "a" * 10_000_000):
        with pytest.raises(Refused, match="Expected a"):
            check_address(network, text)


@pytest.mark.parametrize("network", ["TRC21", "trc20", "", "ERC20", None])
def test_unknown_network_refused(network: object) -> None:
    with pytest.raises(Refused) as refused:
        check_address(network, USDT_CONTRACT)  # type: ignore[arg-type]
    assert str(refused.value) == NETWORK_EXPECTED


@pytest.mark.parametrize("network", ["TRC20", "BEP20"])
def test_not_a_string_refused(network: str) -> None:
    with pytest.raises(Refused):
        check_address(network, 12345)  # type: ignore[arg-type]
