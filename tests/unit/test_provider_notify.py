"""Reading a payment notify (provider-protocol.md, "Payment notify"; design.md, "Money"): one
source of fields, the signature over exactly those fields, then strict formats."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.provider import signing
from adapters.provider.notify import (
    MAX_FIELDS,
    Notify,
    NotifyMalformed,
    NotifySignatureInvalid,
    parse_notify,
    read_fields,
    report_of,
    verify_fields,
)
from flamepay.order import OrderState

KEY = "notify-key-0123456789abcdef"
PREVIOUS = "previous-key-fedcba9876543210"
OTHER = "somebody-elses-key-000000000"
KEYS = (KEY, PREVIOUS)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
NUMBER = "R20260101000001"
FIELDS: dict[str, str] = {
    "mchNo": "M100",
    "mchOrderNo": NUMBER,
    "payOrderNo": "P0001",
    "amount": "10000",
    "realAmount": "10000",
    "currency": "usd",
    "state": "2",
    "wayCode": "ALI_QR",
    "successTime": "1767268800123",
    "timestamp": "1577836800000",  # 2020: an old timestamp is never a reason to refuse
}


def form(fields: dict[str, Any], key: str | None = KEY) -> bytes:
    body = signing.signed(fields, key) if key else dict(fields)
    return urlencode(body).encode()


def as_json(fields: dict[str, Any], key: str | None = KEY) -> bytes:
    body = signing.signed(fields, key) if key else dict(fields)
    return json.dumps(body, ensure_ascii=False).encode()


def parse_form(body: bytes, query: bytes | str = b"") -> Notify:
    return parse_notify(body, FORM, query, KEYS)


# --- one source ---------------------------------------------------------------------------------
def test_a_form_body_is_read_and_verified() -> None:
    notify = parse_form(form(FIELDS))
    assert notify.fields == signing.signed(FIELDS, KEY)
    report = notify.report
    assert report.mch_order_no == NUMBER
    assert report.state is OrderState.SUCCESS
    assert report.amount == 10000 and report.real_amount == 10000
    assert report.currency == "usd"
    assert report.merchant == "M100"
    assert report.provider_order_no == "P0001"
    assert report.raw["wayCode"] == "ALI_QR"


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=UTF-8", ""])
def test_a_json_body_is_read_and_verified(content_type: str) -> None:
    fields: dict[str, Any] = {**FIELDS, "amount": 10000, "state": 2, "realAmount": 9000}
    notify = parse_notify(as_json(fields), content_type, b"", KEYS)
    assert notify.fields == signing.signed(fields, KEY)
    assert notify.report.amount == 10000
    assert notify.report.real_amount == 9000
    assert notify.report.state is OrderState.SUCCESS


@pytest.mark.parametrize("as_bytes", [True, False])
@pytest.mark.parametrize("body", [b"", b"  \r\n"])
def test_a_query_string_with_an_empty_body_is_read(as_bytes: bool, body: bytes) -> None:
    query = form({**FIELDS, "subject": "充值 & more"})
    notify = parse_notify(body, FORM, query if as_bytes else query.decode(), KEYS)
    assert notify.fields["subject"] == "充值 & more"
    assert notify.report.amount == 10000


@pytest.mark.parametrize("content_type", [FORM, JSON])
def test_fields_in_both_the_body_and_the_query_string_are_malformed(content_type: str) -> None:
    body = form(FIELDS) if content_type == FORM else as_json(FIELDS)
    with pytest.raises(NotifyMalformed):
        parse_notify(body, content_type, form(FIELDS), KEYS)
    with pytest.raises(NotifyMalformed):
        read_fields(body, content_type, "x=1")


def test_no_fields_at_all_is_malformed() -> None:
    with pytest.raises(NotifyMalformed):
        parse_notify(b"", FORM, b"", KEYS)
    with pytest.raises(NotifyMalformed):
        parse_notify(b"   ", "", "", KEYS)


# --- the signature ------------------------------------------------------------------------------
def test_an_extra_unsigned_field_breaks_the_signature() -> None:
    body = form(FIELDS) + b"&extra=1"
    assert read_fields(body, FORM, b"")["extra"] == "1"  # parsed, hence part of what is verified
    with pytest.raises(NotifySignatureInvalid):
        parse_form(body)


def test_an_extra_empty_field_does_not_break_the_signature() -> None:
    # "" is never signed, so it cannot be told from an absent field.
    assert parse_form(form(FIELDS) + b"&extra=").fields["extra"] == ""


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_removing_or_changing_a_signed_field_breaks_the_signature(name: str) -> None:
    signed = signing.signed(FIELDS, KEY)
    without = {k: v for k, v in signed.items() if k != name}
    changed = {**signed, name: signed[name] + "0"}
    for fields in (without, changed):
        with pytest.raises(NotifySignatureInvalid):
            parse_form(urlencode(fields).encode())


@pytest.mark.parametrize("key", [KEY, PREVIOUS])
def test_the_key_and_the_previous_key_are_accepted(key: str) -> None:
    assert parse_form(form(FIELDS, key)).report.mch_order_no == NUMBER
    verify_fields(signing.signed(FIELDS, key), KEYS)


@pytest.mark.parametrize("key", [OTHER, KEY + "x", KEY.upper()])
def test_an_unknown_key_is_refused(key: str) -> None:
    with pytest.raises(NotifySignatureInvalid):
        parse_form(form(FIELDS, key))


def test_the_previous_key_is_refused_once_it_is_no_longer_configured() -> None:
    with pytest.raises(NotifySignatureInvalid):
        parse_notify(form(FIELDS, PREVIOUS), FORM, b"", (KEY, ""))
    with pytest.raises(NotifySignatureInvalid):
        parse_notify(form(FIELDS, PREVIOUS), FORM, b"", (KEY,))


def test_no_key_configured_refuses_everything() -> None:
    with pytest.raises(NotifySignatureInvalid):
        parse_notify(form(FIELDS), FORM, b"", ("", ""))


@pytest.mark.parametrize(
    "body",
    [
        urlencode(FIELDS).encode(),
        urlencode({**FIELDS, "sign": ""}).encode(),
        json.dumps({**FIELDS, "sign": None}).encode(),
        json.dumps({**FIELDS, "sign": 123}).encode(),
        json.dumps({**FIELDS, "sign": [signing.sign(FIELDS, KEY)]}).encode(),
    ],
    ids=["absent", "empty", "json-null", "json-number", "json-list"],
)
def test_no_usable_sign_is_a_signature_error(body: bytes) -> None:
    content_type = JSON if body.startswith(b"{") else FORM
    with pytest.raises(NotifySignatureInvalid):
        parse_notify(body, content_type, b"", KEYS)


def test_the_sign_is_case_insensitive_hex() -> None:
    signed = signing.signed(FIELDS, KEY)
    assert parse_form(urlencode({**signed, "sign": signed["sign"].lower()}).encode())


# --- strict formats -----------------------------------------------------------------------------
BAD_INTEGERS = [
    "02",
    "1e2",
    "100.0",
    "+1",
    " 1",
    "1 ",
    "-1",
    "１００",
    "١٠٠",
    "0x10",
    "1_000",
    "10000\n",
    "Infinity",
    "NaN",
]


@pytest.mark.parametrize("name", ["amount", "state", "realAmount"])
@pytest.mark.parametrize("value", BAD_INTEGERS)
def test_a_correctly_signed_malformed_number_is_malformed(name: str, value: str) -> None:
    body = form({**FIELDS, name: value})  # signed with the key: the format check is reached
    with pytest.raises(NotifyMalformed):
        parse_form(body)


@pytest.mark.parametrize(
    "text",
    [
        '"amount": 100.0',
        '"amount": 1e2',
        '"amount": 1E4',
        '"amount": NaN',
        '"amount": Infinity',
        '"realAmount": 99.5',
        '"state": 2.0',
        '"amount": -Infinity',
    ],
)
def test_a_json_number_that_is_not_an_integer_is_malformed(text: str) -> None:
    name = text.split('"')[1]
    fields = {k: v for k, v in FIELDS.items() if k != name}
    body = json.dumps(signing.signed(fields, KEY))[:-1] + ", " + text + "}"
    with pytest.raises(NotifyMalformed):
        parse_notify(body.encode(), JSON, b"", KEYS)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("amount", -1),
        ("amount", True),
        ("state", False),
        ("amount", "100.0"),
        ("state", 8),
        ("realAmount", -5),
        ("amount", None),
        ("state", [2]),
        ("amount", {"v": 1}),
    ],
)
def test_a_correctly_signed_json_value_of_the_wrong_kind_is_malformed(
    name: str, value: object
) -> None:
    with pytest.raises(NotifyMalformed):
        parse_notify(as_json({**FIELDS, name: value}), JSON, b"", KEYS)


@pytest.mark.parametrize(
    "body",
    [b"amount=10000&subject=\xff\xfe", b"\xef\xbb\xbf\xc3\x28=1", "金额=1".encode("gbk")],
    ids=["latin1-bytes", "broken-utf8", "gbk"],
)
def test_a_body_that_is_not_utf8_is_malformed(body: bytes) -> None:
    with pytest.raises(NotifyMalformed):
        parse_form(body)


@pytest.mark.parametrize("where", ["body", "query"])
def test_percent_encoded_bytes_that_are_not_utf8_are_malformed(where: str) -> None:
    encoded = form(FIELDS) + b"&subject=%FF%FE"
    with pytest.raises(NotifyMalformed):
        parse_form(encoded) if where == "body" else parse_form(b"", encoded)


@pytest.mark.parametrize("name", ["amount", "state", "mchOrderNo", "sign", "wayCode"])
@pytest.mark.parametrize("where", ["body", "query"])
def test_a_duplicate_form_key_is_malformed(name: str, where: str) -> None:
    signed = signing.signed(FIELDS, KEY)
    encoded = (urlencode(signed) + "&" + urlencode({name: signed[name]})).encode()
    with pytest.raises(NotifyMalformed):
        parse_form(encoded) if where == "body" else parse_form(b"", encoded)


def test_a_duplicate_json_key_is_malformed() -> None:
    signed = signing.signed(FIELDS, KEY)
    # An earlier "amount" that json.loads drops: what remains is correctly signed, so only
    # the duplicate itself can be the reason to refuse it.
    body = '{"amount": "1", ' + json.dumps(signed)[1:]
    assert json.loads(body) == signed
    with pytest.raises(NotifyMalformed):
        parse_notify(body.encode(), JSON, b"", KEYS)


@pytest.mark.parametrize("name", ["mchOrderNo", "state", "amount"])
@pytest.mark.parametrize("empty", ["absent", ""])
def test_a_missing_required_field_is_malformed(name: str, empty: str) -> None:
    fields = {k: v for k, v in FIELDS.items() if k != name}
    if empty == "":
        fields[name] = ""
    with pytest.raises(NotifyMalformed):
        parse_form(form(fields))


@pytest.mark.parametrize("state", ["8", "9", "10", "99"])
def test_an_unknown_state_is_malformed(state: str) -> None:
    with pytest.raises(NotifyMalformed):
        parse_form(form({**FIELDS, "state": state}))


@pytest.mark.parametrize("state", [s.value for s in OrderState])
def test_every_known_state_is_read(state: int) -> None:
    assert parse_form(form({**FIELDS, "state": str(state)})).report.state == state


@pytest.mark.parametrize("number", ["R 1", "R\t1", "Rä1", "R" * 65, "R\x001"])
def test_an_unusable_order_number_is_malformed(number: str) -> None:
    with pytest.raises(NotifyMalformed):
        parse_form(form({**FIELDS, "mchOrderNo": number}))


@pytest.mark.parametrize("name", ["currency", "mchNo", "payOrderNo"])
def test_a_text_field_of_another_json_type_is_malformed(name: str) -> None:
    with pytest.raises(NotifyMalformed):
        parse_notify(as_json({**FIELDS, name: 840}), JSON, b"", KEYS)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"{", b'{"a": 1,}', b"[" * 5000])
def test_a_json_body_that_is_not_an_object_is_malformed(body: bytes) -> None:
    with pytest.raises(NotifyMalformed):
        parse_notify(body, JSON, b"", KEYS)


@pytest.mark.parametrize("body", [b"amount", b"a=1&&b=2", b"a=1&b"])
def test_a_form_that_is_not_well_formed_is_malformed(body: bytes) -> None:
    with pytest.raises(NotifyMalformed):
        parse_form(body)


def test_too_many_fields_are_malformed() -> None:
    padding = {f"f{i:03d}": "x" for i in range(MAX_FIELDS - len(FIELDS))}
    assert parse_form(form({**FIELDS, **{k: padding[k] for k in list(padding)[:-1]}}))
    with pytest.raises(NotifyMalformed):
        parse_form(form({**FIELDS, **padding}))  # one over: sign makes MAX_FIELDS + 1


# --- the report ---------------------------------------------------------------------------------
def test_the_report_reads_the_jeepay_provider_number_and_no_real_amount() -> None:
    fields = {k: v for k, v in FIELDS.items() if k not in ("payOrderNo", "realAmount")}
    fields.update(payOrderId="J0042", appId="app-1", reqTime="1767268800123")
    report = parse_form(form(fields)).report
    assert report.provider_order_no == "J0042"
    assert report.real_amount is None
    assert report.amount == 10000
    assert report.merchant == "M100"
    assert report.currency == "usd"


def test_payorderno_wins_over_payorderid() -> None:
    report = parse_form(form({**FIELDS, "payOrderId": "J0042"})).report
    assert report.provider_order_no == "P0001"


def test_a_real_amount_that_differs_is_reported_as_sent() -> None:
    report = parse_form(form({**FIELDS, "realAmount": "9950", "state": "3"})).report
    assert (report.amount, report.real_amount, report.state) == (10000, 9950, OrderState.FAILED)


def test_a_notify_without_merchant_or_currency_reports_none() -> None:
    fields = {k: v for k, v in FIELDS.items() if k not in ("mchNo", "currency")}
    report = parse_form(form(fields)).report
    assert report.merchant is None and report.currency is None


def test_report_of_alone_reads_verified_fields() -> None:
    report = report_of({**FIELDS, "amount": "1", "state": "0"})
    assert (report.amount, report.state) == (1, OrderState.CREATED)


def test_zero_amount_is_read_as_zero() -> None:
    assert parse_form(form({**FIELDS, "amount": "0"})).report.amount == 0


# --- property: no other outcome -----------------------------------------------------------------
text_fields = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda k: k != "sign"),
    st.text(max_size=12),
    max_size=12,
)
TRICKY = st.sampled_from(["", "0", "01", "7", "8", "1.5", "-3", "R 1", "１", " 2"]) | st.text()


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, str]:
    """A real notify's fields, each kept, dropped or replaced, plus arbitrary extra fields."""
    fields = draw(text_fields)
    for name, value in FIELDS.items():
        choice = draw(st.integers(0, 9))
        if choice < 7:
            fields[name] = value
        elif choice == 7:
            fields.pop(name, None)
        else:
            fields[name] = draw(TRICKY)
    return fields


@given(
    st.one_of(text_fields, near_valid()),
    st.sampled_from(["form", "json", "query", "json-untyped"]),
    st.sampled_from([KEY, PREVIOUS, OTHER]),
)
def test_signed_arbitrary_text_fields_only_parse_or_raise_the_two_errors(
    fields: dict[str, str], source: str, key: str
) -> None:
    body: bytes
    query: bytes = b""
    content_type = FORM
    if source == "form":
        body = form(fields, key)
    elif source == "query":
        body, query = b"", form(fields, key)
    else:
        body = as_json(fields, key)
        content_type = JSON if source == "json" else ""
    try:
        notify = parse_notify(body, content_type, query, KEYS)
    except NotifyMalformed:
        return
    except NotifySignatureInvalid:
        # The fields arrive exactly as they were signed: only the unknown key is refused.
        assert key == OTHER
        return
    assert key != OTHER
    assert notify.fields == signing.signed(fields, key)
    assert notify.report.mch_order_no == fields["mchOrderNo"]
    assert notify.report.amount == int(fields["amount"])
