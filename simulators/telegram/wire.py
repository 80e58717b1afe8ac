"""The Bot API's wire format: limits and error texts, `ApiError`, and the parsing of a call's
parameters (query string, urlencoded, multipart or JSON body; `_Params` for typed access)."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import email.utils
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_TEXT = 4096  # UTF-16 code units of the parsed text, as Telegram counts
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")
_SCOPES = (
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
)
_PARSE_MODES = ("HTML", "Markdown", "MarkdownV2")
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description, optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.status)


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- request parsing -----------------------------------------------------------------------------
def _header_text(text: str) -> str:
    """A header value parsed from latin-1 text back to UTF-8 (httpx sends raw UTF-8), with the
    HTML5 escapes of multipart names undone (a quote is sent as %22)."""
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    return text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """Form fields and files (name -> (filename, bytes)) of a multipart/form-data body.

    The body is handed to the email parser as latin-1 text: every byte maps to one character,
    so header values can be re-read as UTF-8 and `get_payload(decode=True)` gives the exact
    bytes back (raw-unicode-escape of characters below 256)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n"
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(
        head + body.decode("latin-1")
    )
    if not message.is_multipart():
        raise _bad("can't parse multipart/form-data request")
    fields: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        name = _header_text(email.utils.collapse_rfc2231_value(name))
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (_header_text(filename), payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


async def read_parameters(request: Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """The parameters of a Bot API call: query string, then the body (urlencoded, multipart or
    JSON). Form values are strings (PTB JSON-encodes all but strings); JSON values are native."""
    params: dict[str, Any] = dict(parse_qsl(request.url.query, keep_blank_values=True))
    files: dict[str, tuple[str, bytes]] = {}
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params, files
    if kind == "multipart/form-data":
        fields, files = parse_multipart(body, content_type)
        params.update(fields)
    elif kind == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError as error:
            raise _bad("can't parse JSON request body") from error
        if not isinstance(decoded, dict):
            raise _bad("request body must be a JSON object")
        params.update(decoded)
    else:  # application/x-www-form-urlencoded, or no content type at all
        try:
            params.update(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            )
        except UnicodeDecodeError as error:
            raise _bad("request body is not UTF-8") from error
    return params, files


class _Params:
    """Typed access to the parameters of one call."""

    def __init__(self, values: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> None:
        self.values = values
        self.files = files

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise _bad(f"{name} is empty" if name != "text" else "message text is empty")
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise _bad(f"{name} is empty")
            return default
        if isinstance(value, bool):
            raise _bad(f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(f"invalid {name} specified") from None

    def number(self, name: str, default: float) -> float:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "1")

    def json(self, name: str) -> Any:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise _bad(f"can't parse {what} JSON object") from None
