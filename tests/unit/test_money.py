"""Money parsing, formatting and the fee, exactly as the design's "Money and fees" says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flamepay.errors import InvalidAmount
from flamepay.money import (
    fee_for,
    format_amount,
    format_money,
    parse_amount,
    parse_fee_percent,
    parse_provider_integer,
    same_currency,
    split_payment,
)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("100", 10000),
        ("100.5", 10050),
        ("100.50", 10050),
        ("0.01", 1),
        ("999999999.99", 99999999999),
        ("007", 700),
        ("12.3", 1230),
    ],
)
def test_accepted_amounts(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    "text",
    [
        "1_000",
        "１００",
        "١٠٠",
        " +5",
        "+5",
        "1e3",
        "Infinity",
        "NaN",
        "-1",
        "1.234",
        "",
        " ",
        "1.",
        ".5",
        "0",
        "0.00",
        "1,00",
        "100\n",
        " 100",
        "1000000000",
        "١",
        "10.0.0",
        "0x10",
    ],
)
def test_refused_amounts_say_what_is_expected(text: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text)
    assert "amount" in str(refused.value).lower()


def test_maximum_is_inclusive_and_named() -> None:
    assert parse_amount("10000", maximum=1_000_000) == 1_000_000
    with pytest.raises(InvalidAmount, match=r"at most 10000\.00"):
        parse_amount("10000.01", maximum=1_000_000)


@pytest.mark.parametrize(
    ("amount", "bp", "fee", "credit"),
    [
        (10000, 1500, 1500, 8500),
        (7, 1500, 1, 6),
        (3, 1500, 0, 3),
        (4, 1250, 1, 3),
        (1, 10000, 1, 0),
        (12345, 0, 0, 12345),
        (5, 1000, 1, 4),
        (15, 1000, 2, 13),
    ],
)
def test_fee_is_deducted_and_rounds_half_up(amount: int, bp: int, fee: int, credit: int) -> None:
    assert fee_for(amount, bp) == fee
    assert split_payment(amount, bp) == (fee, credit)


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_fee_matches_exact_rational_round_half_up(amount: int, bp: int) -> None:
    # Property: the integer formula equals floor(amount*bp/10000 + 1/2), checked with
    # Fraction-free integer reasoning: 2*fee - 1 <= 2*amount*bp/10000 < 2*fee + 1.
    fee = fee_for(amount, bp)
    exact_twice = 2 * amount * bp
    assert (2 * fee - 1) * 10_000 <= exact_twice < (2 * fee + 1) * 10_000
    assert 0 <= fee <= amount


@pytest.mark.parametrize(
    "call",
    [
        lambda: fee_for(100.0, 1500),
        lambda: fee_for(100, 15.0),
        lambda: format_amount(1.5),
        lambda: split_payment(10.0, 1500),
        lambda: parse_amount(100.0),
        lambda: fee_for(True, 1500),
    ],
)
def test_a_float_is_a_type_error(call) -> None:
    with pytest.raises(TypeError):
        call()


def test_format() -> None:
    assert format_money(8500, "usd") == "85.00 USD"
    assert format_money(0, "USD") == "0.00 USD"
    assert format_amount(-1205) == "-12.05"
    assert format_amount(7) == "0.07"


def test_currency_compared_without_case() -> None:
    assert same_currency("usd", "USD")
    assert not same_currency("usd", "usdt")


@pytest.mark.parametrize(
    ("text", "bp"),
    [("15", 1500), ("12.5", 1250), ("0", 0), ("100", 10000), ("0.01", 1), ("99.99", 9999)],
)
def test_fee_percent(text: str, bp: int) -> None:
    assert parse_fee_percent(text) == bp


@pytest.mark.parametrize("text", ["100.01", "101", "-1", "15%", "1.234", "", "1e1", "１５"])
def test_fee_percent_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_fee_percent(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("100", 100), ("123456", 123456), (7, 7)])
def test_provider_integers(text: object, value: int) -> None:
    assert parse_provider_integer(text, "amount") == value


@pytest.mark.parametrize(
    "text", ["02", "100.0", "1e2", "+1", " 1", "-1", "", "１", True, 1.0, None, -5]
)
def test_provider_integers_refused(text: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_provider_integer(text, "amount")
