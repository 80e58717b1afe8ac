"""Issue 15 fault 8: hostile notify bodies (lone surrogates, deep JSON, huge or many keys, NUL
bytes, invalid UTF-8) escaped the parser as other exceptions and were answered 503 with an
ERROR traceback. Each must be NotifyMalformed at the parser (400 `fail`, one log line,
nothing changed), whether or not the rest of the body is correctly signed."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, urlencode

import httpx
import pytest

from adapters.provider import signing
from adapters.provider.notify import (
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_KEY_LENGTH,
    NotifyMalformed,
    parse_notify,
)
from entrypoints.serving import serving
from entrypoints.web import build_web_app
from tests.helpers.web_support import books_snapshot, notify_fields, open_orders, wire

KEY = "notify-key-0123456789abcdef"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FIELDS = {
    "mchNo": "M100",
    "mchOrderNo": "R20260101000001",
    "payOrderNo": "P0001",
    "amount": "10000",
    "realAmount": "10000",
    "currency": "usd",
    "state": "2",
    "wayCode": "ALI_QR",
    "timestamp": "1577836800000",
}
FAKE_SIGN = "A" * 32  # a well-formed sign, so only the body itself can be the reason


def _json_text(fields: dict, extra: str) -> bytes:
    """Fields as JSON with `extra` (raw JSON text, e.g. with a \\ud800 escape) inserted."""
    body = json.dumps({**fields, "sign": FAKE_SIGN})
    return (body[:-1] + ", " + extra + "}").encode()


def _deep(levels: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = "1" if opener == "[" else '"x"'
    head = opener if opener == "[" else '{"a": '
    return head * levels + inner + closer * levels


def _signed_form(fields: dict) -> bytes:
    return urlencode(signing.signed(fields, KEY)).encode()


# (name, body, content type, query string, a word the reason must contain)
HOSTILE = [
    ("json-surrogate-value", _json_text(FIELDS, '"x": "\\ud800"'), JSON, b"", "surrogate"),
    (
        "json-surrogate-in-signed-field",
        json.dumps({**FIELDS, "currency": "\ud800", "sign": FAKE_SIGN}).encode(),
        JSON,
        b"",
        "surrogate",
    ),
    ("json-surrogate-key", _json_text(FIELDS, '"\\udfff": "1"'), JSON, b"", "surrogate"),
    (
        "json-surrogate-nested",
        _json_text(FIELDS, '"extParam": {"a": ["\\ud83d"]}'),
        JSON,
        b"",
        "surrogate",
    ),
    (
        "json-surrogate-in-nested-lists",
        _json_text(FIELDS, '"extParam": [["\\udbff"]]'),
        JSON,
        b"",
        "surrogate",
    ),
    ("json-deep-list-900", _json_text(FIELDS, f'"extParam": {_deep(900)}'), JSON, b"", "deep"),
    (
        "json-deep-object-300",
        _json_text(FIELDS, f'"extParam": {_deep(300, "{")}'),
        JSON,
        b"",
        "deep",
    ),
    ("json-deep-list-20000", _json_text(FIELDS, f'"extParam": {_deep(20000)}'), JSON, b"", "deep"),
    (
        "json-just-too-deep",
        _json_text(FIELDS, f'"extParam": {_deep(MAX_DEPTH)}'),
        JSON,
        b"",
        "deep",
    ),
    (
        "json-nul-value",
        json.dumps({**FIELDS, "wayCode": "A\x00", "sign": FAKE_SIGN}).encode(),
        JSON,
        b"",
        "NUL",
    ),
    ("json-nul-key", _json_text(FIELDS, '"a\\u0000b": "1"'), JSON, b"", "NUL"),
    ("json-nul-nested", _json_text(FIELDS, '"extParam": {"k": "\\u0000"}'), JSON, b"", "NUL"),
    (
        "json-long-key",
        _json_text(FIELDS, f'"{"k" * (MAX_KEY_LENGTH + 1)}": "1"'),
        JSON,
        b"",
        "long",
    ),
    (
        "json-long-nested-key",
        _json_text(FIELDS, f'"extParam": {{"{"k" * 5000}": 1}}'),
        JSON,
        b"",
        "long",
    ),
    (
        "json-many-nested-keys",
        _json_text(
            FIELDS, '"extParam": ' + json.dumps({f"k{i}": i for i in range(MAX_FIELDS + 1)})
        ),
        JSON,
        b"",
        "many",
    ),
    ("form-surrogate-value", _signed_form(FIELDS) + b"&x=%ED%A0%80", FORM, b"", "UTF-8"),
    ("form-surrogate-key", _signed_form(FIELDS) + b"&%ED%B0%80=1", FORM, b"", "UTF-8"),
    ("form-invalid-utf8-value", _signed_form(FIELDS) + b"&wayCode=%C3%28", FORM, b"", "UTF-8"),
    ("form-invalid-utf8-key", _signed_form(FIELDS) + b"&%FF=1", FORM, b"", "UTF-8"),
    ("form-raw-invalid-utf8", _signed_form(FIELDS) + b"&x=\xed\xa0\x80", FORM, b"", "UTF-8"),
    ("form-nul-value-signed", _signed_form({**FIELDS, "wayCode": "ALI\x00QR"}), FORM, b"", "NUL"),
    ("form-nul-key-signed", _signed_form({**FIELDS, "a\x00": "1"}), FORM, b"", "NUL"),
    ("form-long-key-signed", _signed_form({**FIELDS, "k" * 5000: "1"}), FORM, b"", "long"),
    (
        "form-many-keys",
        _signed_form({**FIELDS, **{f"f{i}": "1" for i in range(3000)}}),
        FORM,
        b"",
        "many",
    ),
    ("query-surrogate", b"", "", _signed_form(FIELDS) + b"&x=%ED%A0%80", "UTF-8"),
    ("query-nul", b"", "", _signed_form({**FIELDS, "currency": "usd\x00"}), "NUL"),
    ("query-long-key", b"", "", _signed_form({**FIELDS, "q" * 200: "1"}), "long"),
    ("query-raw-invalid-utf8", b"", "", b"mchOrderNo=\xff&sign=" + FAKE_SIGN.encode(), "UTF-8"),
    (
        "duplicate-across-form-and-query",
        _signed_form(FIELDS),
        FORM,
        urlencode({"amount": "10000"}).encode(),
        "both",
    ),
    (
        "duplicate-sign-across-json-and-query",
        json.dumps(signing.signed(FIELDS, KEY)).encode(),
        JSON,
        b"sign=" + FAKE_SIGN.encode(),
        "both",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "query", "word"),
    [pytest.param(*case[1:], id=case[0]) for case in HOSTILE],
)
def test_issue15_fault8_hostile_bodies_are_malformed_with_a_clear_reason(
    body: bytes, content_type: str, query: bytes, word: str
) -> None:
    """Issue 15 fault 8: surrogates, deep JSON, long/many keys, NUL bytes and invalid UTF-8
    escaped parse_notify as UnicodeEncodeError/RecursionError (-> 503); each is now
    NotifyMalformed, with a reason that says what is wrong."""
    with pytest.raises(NotifyMalformed) as caught:
        parse_notify(body, content_type, query, (KEY,))
    assert word.lower() in str(caught.value).lower()
    assert KEY not in str(caught.value)


def test_issue15_fault8_the_limits_leave_real_notifies_alone() -> None:
    """Issue 15 fault 8: the new bounds (depth, key length, field count) still read a real
    notify with nested objects, a valid surrogate pair (an emoji) and a key at the limit."""
    nested = {
        "wayParam": {"openid": "o-1", "extra": [{"a": "😀"}]},
        "k" * MAX_KEY_LENGTH: "at the limit",
    }
    body = json.dumps(signing.signed({**FIELDS, **nested}, KEY)).encode()
    notify = parse_notify(body, JSON, b"", (KEY,))
    assert notify.fields["wayParam"]["extra"] == [{"a": "😀"}]
    escaped = json.dumps(signing.signed({**FIELDS, "subject": "😀"}, KEY), ensure_ascii=True)
    assert "\\ud83d\\ude00" in escaped  # the pair as two escapes: not a lone surrogate
    assert parse_notify(escaped.encode(), JSON, b"", (KEY,)).fields["subject"] == "😀"
    depth_ok = {"extParam": json.loads(_deep(MAX_DEPTH - 1))}  # the body object is level 1
    assert parse_notify(
        json.dumps(signing.signed({**FIELDS, **depth_ok}, KEY)).encode(), JSON, b"", (KEY,)
    )


@pytest.mark.parametrize(
    "params",
    [{"a": "\ud800"}, {"\udc00": "1"}, {"a": {"b": ["\ud800"]}}],
    ids=["surrogate-value", "surrogate-key", "surrogate-nested"],
)
def test_issue15_fault8_signing_never_leaks_the_key_or_raises_on_verify(params: dict) -> None:
    """Issue 15 fault 8: signing a lone surrogate raised UnicodeEncodeError, whose `object`
    carried the whole canonical string, key included; verify raised instead of saying no."""
    assert signing.verify(params, KEY, FAKE_SIGN) is False
    with pytest.raises(ValueError) as caught:
        signing.sign(params, KEY)
    assert not isinstance(caught.value, UnicodeError)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)


def test_issue15_fault8_signing_a_too_deep_value_is_a_value_error() -> None:
    """Issue 15 fault 8: a nested value deeper than the recursion limit raised RecursionError
    out of sign/verify."""
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    assert signing.verify({"a": deep}, KEY, FAKE_SIGN) is False
    with pytest.raises(ValueError):
        signing.sign({"a": deep}, KEY)


# --- over HTTP, against MariaDB ----------------------------------------------------------------
@pytest.mark.mysql
def test_issue15_fault8_hostile_bodies_answer_400_log_one_line_and_change_nothing(
    mysql_database, caplog
) -> None:
    """Issue 15 fault 8: over the real callback app each hostile body was answered 503 with an
    ERROR traceback ("notify failed unexpectedly"); each is now 400 `fail`, logged as one
    `notify result=malformed` line, no ERROR record, and the books do not move."""
    config = mysql_database.config
    app = wire(config)
    (number,) = open_orders(app, 1)
    real = notify_fields(app, number)
    key = app.merchant.key
    # The real order's own notify, correctly signed, with one hostile thing added.
    signed_json = json.dumps(real)
    cases = [
        (signed_json[:-1] + ', "x": "\\ud800"}', JSON, ""),
        (signed_json[:-1] + f', "extParam": {_deep(900)}}}', JSON, ""),
        (signed_json[:-1] + f', "extParam": {_deep(300, "{")}}}', JSON, ""),
        (urlencode(real) + "&x=%ED%A0%80", FORM, ""),
        (urlencode(signing.signed({**real, "wayCode": "A\x00"}, key)), FORM, ""),
        (urlencode(signing.signed({**real, "k" * 3000: "1"}, key)), FORM, ""),
        ("", "", urlencode(real) + "&x=%ED%A0%80"),
        (urlencode(real), FORM, "amount=" + quote(real["amount"])),
    ]
    before = books_snapshot(config)
    caplog.set_level(logging.INFO)
    try:
        with serving(build_web_app(app)) as url, httpx.Client(timeout=30) as client:
            for body, content_type, query in cases:
                headers = {"content-type": content_type} if content_type else {}
                target = f"{url}/notify" + (f"?{query}" if query else "")
                response = client.post(target, content=body.encode(), headers=headers)
                assert (response.status_code, response.text) == (400, "fail"), body[:80]
    finally:
        app.close()
    assert books_snapshot(config) == before
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    lines = [r.getMessage() for r in caplog.records if r.name == "flamepay.notify"]
    assert lines.count("notify result=malformed order=- status=400") == len(cases)
    assert "Traceback" not in caplog.text
