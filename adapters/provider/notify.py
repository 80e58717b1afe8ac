"""Reading a payment notify: fields from exactly one source, the signature over exactly the
fields received, then strict formats. Malformed input and bad signatures are distinct errors
(the callback answers 400 and 401)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import attrs

from adapters.provider import signing
from adapters.provider.dialects import first_of
from flamepay.errors import InvalidAmount
from flamepay.money import parse_provider_integer
from flamepay.order import OrderState
from flamepay.report import ProviderReport

_ORDER_NO = re.compile(r"[\x21-\x7e]{1,64}", re.ASCII)
# Bounds on what a hostile body can make the parser, the signer and the database do. A real
# notify has about 15 flat fields with short names; wayParam/extParam nest once or twice.
MAX_FIELDS = 100  # in the notify, and in any one nested object
MAX_KEY_LENGTH = 64
MAX_DEPTH = 8  # the body's object is level 1
# JSON's "\ud800" decodes to a lone surrogate, which has no UTF-8 form (nor a signature).
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotifyMalformed(ValueError):
    """Not a notify we can read: answered 400, nothing changes."""


class NotifySignatureInvalid(ValueError):
    """Missing or wrong signature: answered 401, nothing changes."""


@attrs.frozen
class Notify:
    fields: Mapping[str, Any]  # exactly what was received and verified
    report: ProviderReport


def read_fields(body: bytes, content_type: str, query_string: bytes | str) -> dict[str, Any]:
    """The fields from the body when it is non-empty, else from the query string; both at
    once is malformed (which of them was signed would be a guess)."""
    try:
        query = query_string.decode("utf-8") if isinstance(query_string, bytes) else query_string
    except UnicodeDecodeError:
        raise NotifyMalformed("the query string is not UTF-8") from None
    if body.strip():
        if query:
            raise NotifyMalformed("fields in both the body and the query string")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotifyMalformed("the body is not UTF-8") from None
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json" or (not media and text.lstrip().startswith("{")):
            return _json_fields(text)
        return _form_fields(text)
    if query:
        return _form_fields(query)
    raise NotifyMalformed("no fields")


def _form_fields(text: str) -> dict[str, Any]:
    if text.count("&") >= MAX_FIELDS:  # before splitting: the work stays bounded too
        raise NotifyMalformed(f"too many fields (at most {MAX_FIELDS})")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except UnicodeDecodeError:  # %ED%A0%80 (a surrogate) or broken bytes, percent-encoded
        raise NotifyMalformed("a form field is not valid UTF-8 once percent-decoded") from None
    except ValueError:
        raise NotifyMalformed("the form is not well formed") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        _check_name(name)
        _check_text(value)
        if name in fields:
            raise NotifyMalformed(f"field {name[:40]!r} appears twice")
        fields[name] = value
    return _bounded(fields)


def _json_fields(text: str) -> dict[str, Any]:
    _check_depth(text)
    try:
        data = json.loads(
            text, parse_float=_no_float, parse_constant=_no_float, object_pairs_hook=_unique
        )
    except NotifyMalformed:
        raise
    except (ValueError, RecursionError):
        raise NotifyMalformed("the JSON body is not well formed") from None
    if not isinstance(data, dict):
        raise NotifyMalformed("the JSON body is not an object")
    return _bounded(data)


def _check_depth(text: str) -> None:
    """Nesting counted on the text, before json.loads: a body of 20,000 '[' must not reach
    the decoder's (or later the signer's) recursion."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # a real notify: nothing to count
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise NotifyMalformed(f"the JSON body is nested too deep (at most {MAX_DEPTH})")
        elif char in "]}":
            depth -= 1


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice is ambiguous (which one was signed?), as in a form: malformed.
    if len(pairs) > MAX_FIELDS:
        raise NotifyMalformed(f"too many fields in one object (at most {MAX_FIELDS})")
    result: dict[str, Any] = {}
    for name, value in pairs:
        _check_name(name)
        _check_value(value)
        if name in result:
            raise NotifyMalformed(f"key {name[:40]!r} appears twice")
        result[name] = value
    return result


def _check_value(value: Any) -> None:
    # Objects were checked by their own hook; lists are walked (depth is bounded already).
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check_value(item)


def _check_name(name: str) -> None:
    if len(name) > MAX_KEY_LENGTH:
        raise NotifyMalformed(f"a field name is too long (at most {MAX_KEY_LENGTH} characters)")
    _check_text(name)


def _check_text(text: str) -> None:
    # No gateway sends either; a lone surrogate cannot even be signed or stored, and a NUL
    # cuts strings short in C tools and logs. Refused before the signature is looked at.
    if "\x00" in text:
        raise NotifyMalformed("a field name or value contains a NUL byte")
    if _SURROGATE.search(text):
        raise NotifyMalformed("a field name or value contains a lone surrogate (not Unicode)")


def _no_float(value: str) -> Any:
    raise ValueError(f"non-integer number {value[:20]}")


def _bounded(fields: dict[str, Any]) -> dict[str, Any]:
    if len(fields) > MAX_FIELDS:
        raise NotifyMalformed("too many fields")
    return fields


def verify_fields(fields: Mapping[str, Any], keys: Sequence[str]) -> None:
    """PROVIDER_KEY, then PROVIDER_KEY_PREVIOUS (a key rotation in progress)."""
    signature = fields.get("sign")
    if not isinstance(signature, str) or not signature:
        raise NotifySignatureInvalid("no signature")
    try:
        if any(key and signing.verify(fields, key, signature) for key in keys):
            return
    except TypeError:
        raise NotifyMalformed("a field cannot be signed") from None
    raise NotifySignatureInvalid("wrong signature")


def report_of(fields: Mapping[str, Any]) -> ProviderReport:
    number = fields.get("mchOrderNo")
    if not isinstance(number, str) or _ORDER_NO.fullmatch(number) is None:
        raise NotifyMalformed("no usable mchOrderNo")
    try:
        state = OrderState(parse_provider_integer(_required(fields, "state"), "state"))
        amount = parse_provider_integer(_required(fields, "amount"), "amount")
        real = fields.get("realAmount")
        real_amount = None if real in (None, "") else parse_provider_integer(real, "realAmount")
    except (InvalidAmount, ValueError) as error:
        raise NotifyMalformed(str(error)) from None
    return ProviderReport(
        mch_order_no=number,
        state=state,
        amount=amount,
        real_amount=real_amount,
        currency=_text(fields.get("currency")),
        merchant=_text(fields.get("mchNo")),
        provider_order_no=_text(first_of(fields, "payOrderNo", "payOrderId")),
        raw={k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()},
    )


def _required(fields: Mapping[str, Any], name: str) -> Any:
    value = fields.get(name)
    if value is None or value == "":
        raise NotifyMalformed(f"no {name}")
    return value


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NotifyMalformed("a text field carries another type")
    return value


def parse_notify(
    body: bytes, content_type: str, query_string: bytes | str, keys: Sequence[str]
) -> Notify:
    fields = read_fields(body, content_type, query_string)
    verify_fields(fields, keys)
    return Notify(fields, report_of(fields))
