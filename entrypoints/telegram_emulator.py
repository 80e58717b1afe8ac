"""A Telegram Bot API emulator: enough of the Bot API for a real python-telegram-bot bot.

`flamepay demo` runs the bot against it (no network, no real bot token) and the tests drive a
real PTB `Application` through it over loopback sockets. Build the bot with
`.base_url(f"{url}/bot")`; PTB then posts to `{url}/bot{token}/{method}`.

The emulator keeps Telegram's rules where a bot can trip over them: a wrong token is 401, an
unknown method 404, errors come as `{"ok": false, "error_code", "description", "parameters"}`;
URL buttons to loopback, private or non-http(s) addresses are refused with BUTTON_URL_INVALID;
HTML and MarkdownV2 texts are checked like Telegram parses them ("can't parse entities");
editing to the same content is "message is not modified", and editMessageText without
reply_markup drops the inline keyboard; a callback query can be answered once; a second
`getUpdates` ends the one waiting with 409 Conflict. Updates stay queued until a later `offset`
confirms them. (tg:// button URLs are accepted, as Telegram does.)

PTB's wire format: POST, form-urlencoded, strings as they are and every other value
JSON-encoded (chat_id=5, show_alert=true, reply_markup={...}); multipart/form-data when a file
is uploaded (the file part is named after the parameter, e.g. `document`, with its filename as
raw UTF-8 and a quote as %22). Plain JSON bodies and query strings are understood too.

Methods: getMe, deleteWebhook, getWebhookInfo, getUpdates (long polling), sendMessage,
editMessageText, editMessageReplyMarkup, deleteMessage, sendDocument, sendChatAction,
answerCallbackQuery, setMyCommands, getMyCommands, deleteMyCommands.

The test-side API (`BotApiEmulator`) is thread-safe: the server runs on its own event loop
(usually in `entrypoints.serving.serving`'s thread) and a test thread plays the users.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.parser
import email.policy
import email.utils
import hashlib
import ipaddress
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["BotApiEmulator", "SentMessage", "button_url_allowed", "check_entities"]

log = logging.getLogger("flamepay.telegram_emulator")

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


# --- what the bot sent, as the tests see it ------------------------------------------------------
@dataclass(frozen=True)
class SentMessage:
    """A snapshot of a message the bot sent, with its edits applied.

    `text` is what the bot sent (markup included, e.g. HTML tags); `plain_text` is what a user
    sees. A document message has `text == ""`, its `caption` and the file name in `document`.
    `reply_markup` is the inline keyboard (rows of button dicts) or None. `revision` orders all
    changes (sends, edits, deletes) the emulator saw; see `BotApiEmulator.revision`.
    """

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    reply_markup: list[list[dict[str, Any]]] | None
    date: int
    edits: int = 0
    deleted: bool = False
    plain_text: str = ""
    caption: str | None = None
    document: str | None = None
    revision: int = 0

    def buttons(self) -> list[tuple[str, str | None]]:
        """The inline buttons, row by row: (text, callback_data or url or other action)."""
        flat: list[tuple[str, str | None]] = []
        for row in self.reply_markup or ():
            for button in row:
                action = button.get("callback_data", button.get("url"))
                if action is None:
                    action = next(
                        (str(v) for k, v in button.items() if k != "text" and v is not None), None
                    )
                flat.append((button.get("text", ""), action))
        return flat

    def shows(self, fragment: str) -> bool:
        """Whether the fragment is in the text (as sent or as shown) or the caption."""
        return (
            fragment in self.text or fragment in self.plain_text or fragment in (self.caption or "")
        )


@dataclass
class _Record:
    chat_id: int
    message_id: int
    date: int
    text: str
    parse_mode: str | None
    plain_text: str
    markup: dict[str, Any] | None  # the inline keyboard markup object, or None
    revision: int
    caption: str | None = None
    caption_plain: str | None = None
    document: dict[str, Any] | None = None
    edits: int = 0
    deleted: bool = False
    edit_date: int | None = None

    def snapshot(self) -> SentMessage:
        rows = copy.deepcopy(self.markup["inline_keyboard"]) if self.markup else None
        return SentMessage(
            chat_id=self.chat_id,
            message_id=self.message_id,
            text=self.text,
            parse_mode=self.parse_mode,
            reply_markup=rows,
            date=self.date,
            edits=self.edits,
            deleted=self.deleted,
            plain_text=self.plain_text,
            caption=self.caption,
            document=self.document["file_name"] if self.document else None,
            revision=self.revision,
        )


@dataclass
class _Failure:
    status: int
    retry_after: int
    remaining: int


@dataclass
class _Poller:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


# --- Telegram's rules ----------------------------------------------------------------------------
def _host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):  # 127.1, 2130706433, 0x7f.0.0.1: what resolvers accept
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def button_url_allowed(url: object) -> bool:
    """Telegram's check of a URL button: http(s) (or tg://) to a public host."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return bool(parts.netloc)
    if scheme not in ("http", "https"):
        return False
    host = (parts.hostname or "").rstrip(".")
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    address = _host_address(host)
    if address is None:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
    "tg-spoiler", "tg-emoji", "blockquote", "tg-time",
}  # fmt: skip
_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")


def _html_entity(text: str, i: int) -> tuple[str, int]:
    """The character of an entity at text[i] == '&' and where it ends; a lone & is itself."""
    match = _HTML_ENTITY.match(text, i)
    if match:
        decimal, hexadecimal, name = match.groups()
        if decimal or hexadecimal:
            code = int(decimal) if decimal else int(hexadecimal, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), match.end()
        elif name in _HTML_ENTITIES:
            return _HTML_ENTITIES[name], match.end()
    return "&", i + 1


def _parse_html(text: str) -> str:
    """The plain text of a Telegram HTML text; ApiError where Telegram can't parse it."""

    def offset(i: int) -> int:
        return len(text[:i].encode("utf-8"))

    def fail(problem: str) -> ApiError:
        return _bad(f"can't parse entities: {problem}")

    plain: list[str] = []
    open_tags: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded, i = _html_entity(text, i)
            plain.append(decoded)
            continue
        if char != "<":
            plain.append(char)
            i += 1
            continue
        start = i
        if text.startswith("</", i):
            end = text.find(">", i)
            if end < 0:
                raise fail(f"Unclosed end tag at byte offset {offset(start)}")
            name = text[i + 2 : end].strip().lower()
            if not open_tags:
                raise fail(f"Unexpected end tag at byte offset {offset(start)}")
            if name != open_tags[-1]:
                raise fail(
                    f'Unmatched end tag at byte offset {offset(start)}, expected "</'
                    f'{open_tags[-1]}>", found "</{name}>"'
                )
            open_tags.pop()
            i = end + 1
            continue
        i += 1
        name_start = i
        while i < n and (text[i].isascii() and (text[i].isalnum() or text[i] == "-")):
            i += 1
        name = text[name_start:i].lower()
        if name not in _HTML_TAGS:
            raise fail(f'Unsupported start tag "{name}" at byte offset {offset(start)}')
        attributes: dict[str, str] = {}
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise fail(f"Unclosed start tag at byte offset {offset(start)}")
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and not text[i].isspace() and text[i] not in "=>":
                i += 1
            attribute = text[attr_start:i].lower()
            if not attribute:
                raise fail(f'Empty attribute name in the tag "{name}" at byte offset {i}')
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != "=":
                attributes[attribute] = ""
                continue
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] in "'\"":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end < 0:
                    raise fail(f"Unclosed start tag at byte offset {offset(start)}")
                raw, i = text[i + 1 : end], end + 1
            else:
                value_start = i
                while i < n and not text[i].isspace() and text[i] != ">":
                    i += 1
                raw = text[value_start:i]
            attributes[attribute] = raw
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise fail('Tag "span" must have class "tg-spoiler"')
        open_tags.append(name)
    if open_tags:
        raise fail(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(plain)


_MD2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MD2_PAIRS = {"*": "Bold", "_": "Italic", "~": "Strikethrough", "||": "Spoiler", "__": "Underline"}


def _parse_markdown_v2(text: str) -> str:
    """The plain text of a MarkdownV2 text; ApiError for an unescaped reserved character or
    an entity that is not closed, as Telegram answers."""

    def offset(i: int) -> int:
        return len(text[:i].encode("utf-8"))

    def fail(problem: str) -> ApiError:
        return _bad(f"can't parse entities: {problem}")

    plain: list[str] = []
    open_marks: list[tuple[str, int]] = []
    link_depth = 0
    i, n = 0, len(text)
    line_start = True
    while i < n:
        char = text[i]
        if char == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) <= 126:  # any ASCII can be escaped
                plain.append(text[i + 1])
                i += 2
                line_start = False
                continue
            raise fail("Character '\\' is reserved and must be escaped with the preceding '\\'")
        if char == "`":
            fence = "```" if text.startswith("```", i) else "`"
            j = i + len(fence)
            while j < n and not text.startswith(fence, j):
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                kind = "Pre" if fence == "```" else "Code"
                raise fail(f"Can't find end of {kind} entity at byte offset {offset(i)}")
            body = text[i + len(fence) : j]
            if fence == "```" and "\n" in body:
                body = body.split("\n", 1)[1]  # the language line
            plain.append(re.sub(r"\\(.)", r"\1", body))
            i = j + len(fence)
            line_start = False
            continue
        mark = next((m for m in ("||", "__") if text.startswith(m, i)), None) or (
            char if char in "*_~" else None
        )
        if mark:
            if open_marks and open_marks[-1][0] == mark:
                open_marks.pop()
            else:
                open_marks.append((mark, i))
            i += len(mark)
            line_start = False
            continue
        if char == "[" or (char == "!" and text.startswith("![", i)):
            link_depth += 1
            i += 2 if char == "!" else 1
            line_start = False
            continue
        if char == "]" and link_depth:
            link_depth -= 1
            i += 1
            if i < n and text[i] == "(":
                j = i + 1
                while j < n and text[j] != ")":
                    j += 2 if text[j] == "\\" else 1
                if j >= n:
                    raise fail(f"Can't find end of a URL at byte offset {offset(i)}")
                i = j + 1
            else:
                raise fail(f"Can't find end of TextUrl entity at byte offset {offset(i - 1)}")
            continue
        if char == ">" and line_start:
            i += 1
            line_start = False
            continue
        if char in _MD2_RESERVED:
            raise fail(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        plain.append(char)
        line_start = char == "\n"
        i += 1
    if open_marks:
        mark, at = open_marks[-1]
        raise fail(f"Can't find end of {_MD2_PAIRS[mark]} entity at byte offset {offset(at)}")
    if link_depth:
        raise fail("Can't find end of TextUrl entity")
    return "".join(plain)


def check_entities(text: str, parse_mode: str | None) -> str:
    """The text a user sees for `text` in `parse_mode`; ApiError as Telegram refuses it."""
    if parse_mode is None or parse_mode == "":
        return text
    if parse_mode not in _PARSE_MODES:
        raise _bad("unsupported parse_mode")
    if parse_mode == "HTML":
        return _parse_html(text)
    if parse_mode == "MarkdownV2":
        return _parse_markdown_v2(text)
    return re.sub(r"[*_`\[\]]", "", text)  # legacy Markdown: lenient


def _check_inline_keyboard(markup: object) -> dict[str, Any]:
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    rows = markup["inline_keyboard"]
    for row in rows:
        if not isinstance(row, list):
            raise _bad("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array "
                       "of Arrays")  # fmt: skip
        for button in row:
            if not isinstance(button, dict):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be "
                           "an Object")  # fmt: skip
            if not isinstance(button.get("text"), str):
                raise _bad('can\'t parse inline keyboard button: Field "text" must be of type '
                           "String")  # fmt: skip
            actions = [k for k in button if k != "text" and button[k] is not None]
            if not actions:
                raise _bad("can't parse inline keyboard button: Text buttons are unallowed in "
                           "the inline keyboard")  # fmt: skip
            if "url" in button and not button_url_allowed(button["url"]):
                raise _bad("BUTTON_URL_INVALID")  # Telegram names no more
            login = button.get("login_url")
            if isinstance(login, dict) and not button_url_allowed(login.get("url")):
                raise _bad("BUTTON_URL_INVALID")
            if "callback_data" in button:
                data = button["callback_data"]
                if (
                    not isinstance(data, str)
                    or not data
                    or len(data.encode("utf-8")) > MAX_CALLBACK_DATA
                ):
                    raise _bad("BUTTON_DATA_INVALID")
    return {"inline_keyboard": copy.deepcopy(rows)}


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


# --- the emulator --------------------------------------------------------------------------------
class BotApiEmulator:
    """One bot's Bot API, its chats and what it sent. See the module docstring."""

    def __init__(
        self,
        token: str,
        bot_username: str = "flamepay_bot",
        *,
        bot_name: str = "FlamePay",
        strict_chats: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"not a bot token: {token!r} (digits, a colon, then [A-Za-z0-9_-])")
        self.token = token
        self.bot_username = bot_username
        self.strict_chats = strict_chats  # refuse private chats that never wrote to the bot
        self.clock = clock
        self.bot_user = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._revisions = itertools.count(1)
        self._revision = 0
        self._allowed_updates: list[str] | None = None
        self._pollers: list[_Poller] = []
        self._poll_generation = 0
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._records: dict[tuple[int, int], _Record] = {}
        self._user_messages: set[tuple[int, int]] = set()
        self._open_queries: set[str] = set()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._answered: list[tuple[str, str | None, bool]] = []
        self._commands: dict[str, list[dict[str, str]]] = {}
        self._documents: list[tuple[int, str, bytes, str | None]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._blocked: set[int] = set()
        self._calls: Counter[str] = Counter()
        self._methods: dict[str, Callable[[_Params], Any]] = {
            "getMe": lambda _: dict(self.bot_user),
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
        }
        self._canonical = {name.lower(): name for name in [*self._methods, "getUpdates"]}
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", _not_found, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # --- the users' side (call from any thread) ------------------------------------------------
    def send_message(
        self,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
        username: str | None = None,
        first_name: str = "User",
    ) -> int:
        """A user writes `text` to the bot (in a private chat, or in chat_id for groups);
        returns the update_id. A leading /command gets its bot_command entity."""
        user = self._user(user_id, username, first_name)
        with self._lock:
            if chat_type == "private":
                if chat_id not in (None, user_id):
                    raise ValueError("a private chat's id is the user's id")
                chat_id = user_id
                chat = {"id": user_id, "type": "private", "first_name": first_name}
                if username:
                    chat["username"] = username
            else:
                if chat_id is None:
                    raise ValueError(f"a {chat_type} chat needs its chat_id")
                chat = self._chats.get(chat_id) or {
                    "id": chat_id,
                    "type": chat_type,
                    "title": f"Chat {chat_id}",
                }
            self._chats[chat_id] = chat
            message_id = self._message_id(chat_id)
            self._user_messages.add((chat_id, message_id))
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(self.clock()),
                "chat": dict(chat),
                "text": text,
            }
            if chat_type == "channel":
                message["sender_chat"] = dict(chat)
            else:
                message["from"] = dict(user)
            command = _COMMAND.match(text)
            if command:
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())}
                ]
            kind = "channel_post" if chat_type == "channel" else "message"
            return self._queue({kind: message})

    def press_button(
        self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> str:
        """The user presses a button carrying `data` under a message the bot sent; returns the
        callback query id. The data is not checked against the keyboard (clients can forge)."""
        user = self._user(user_id, None, None)
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            record = self._records.get((chat_id, message_id))
            if record is None or record.deleted:
                raise ValueError(f"the bot has no message {message_id} in chat {chat_id}")
            query_id = str(next(self._query_ids))
            self._open_queries.add(query_id)
            self._queue(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": dict(user),
                        "message": self._wire(record),
                        "chat_instance": _chat_instance(chat_id),
                        "data": data,
                    }
                }
            )
            return query_id

    def send_update(self, update: dict[str, Any]) -> int:
        """Queue any update object (its update_id is assigned); returns the update_id."""
        with self._lock:
            return self._queue(copy.deepcopy(update))

    # --- what the bot did ----------------------------------------------------------------------
    def messages(self, chat_id: int | None = None) -> list[SentMessage]:
        """What the bot sent (edits applied, deleted ones flagged), in the order it was sent."""
        with self._lock:
            return [
                record.snapshot()
                for record in self._records.values()
                if chat_id is None or record.chat_id == chat_id
            ]

    @property
    def revision(self) -> int:
        """The revision of the latest change to a bot message; pass it as wait_for's `after`."""
        with self._lock:
            return self._revision

    def wait_for(
        self, predicate: Callable[[SentMessage], bool], timeout: float = 10.0, *, after: int = 0
    ) -> SentMessage:
        """Block until a bot message (sent or edited after revision `after`) satisfies the
        predicate; the most recently changed match. AssertionError with what was sent if none
        does within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                candidates = sorted(
                    (r for r in self._records.values() if r.revision > after),
                    key=lambda r: r.revision,
                    reverse=True,
                )
                for record in candidates:
                    snapshot = record.snapshot()
                    if predicate(snapshot):
                        return snapshot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no bot message matched within {timeout}s; the bot sent:\n"
                        + self._describe()
                    )
                self._changed.wait(remaining)

    def wait_for_text(
        self, chat_id: int, fragment: str, timeout: float = 10.0, *, after: int = 0
    ) -> SentMessage:
        """Block until a (not deleted) bot message in chat_id shows `fragment`."""
        return self.wait_for(
            lambda m: m.chat_id == chat_id and not m.deleted and m.shows(fragment),
            timeout,
            after=after,
        )

    @property
    def answered_callbacks(self) -> list[tuple[str, str | None, bool]]:
        """(callback_query_id, text, show_alert) of every answerCallbackQuery."""
        with self._lock:
            return list(self._answered)

    @property
    def commands(self) -> dict[str, list[dict[str, str]]]:
        """setMyCommands by scope key: 'default', 'all_private_chats', 'chat:<chat_id>',
        'chat_member:<chat_id>:<user_id>', ...; '/<language_code>' appended when given."""
        with self._lock:
            return copy.deepcopy(self._commands)

    @property
    def documents(self) -> list[tuple[int, str, bytes, str | None]]:
        """(chat_id, filename, bytes, caption) of every sendDocument."""
        with self._lock:
            return list(self._documents)

    @property
    def call_counts(self) -> Counter[str]:
        """Calls per method (canonical names), failed and refused ones included."""
        with self._lock:
            return Counter(self._calls)

    @property
    def waiting_polls(self) -> int:
        """getUpdates calls waiting for an update right now (long polls in flight)."""
        with self._lock:
            return len(self._pollers)

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by an offset."""
        with self._lock:
            return len(self._updates)

    # --- fault injection -----------------------------------------------------------------------
    def fail_next(
        self, method: str, status: int = 429, retry_after: int = 1, count: int = 1
    ) -> None:
        """The next `count` calls of `method` fail: 429 with parameters.retry_after, 403 as a
        user who blocked the bot, any other status with its standard phrase."""
        name = self._canonical.get(method.lower())
        if name is None:
            raise ValueError(f"{method} is not an emulated method")
        with self._lock:
            self._failures.setdefault(name, []).append(_Failure(status, retry_after, count))

    def block(self, chat_id: int) -> None:
        """Every send to chat_id answers 403, as for a user who blocked the bot."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    # --- internals (callers hold the lock) -----------------------------------------------------
    def _user(self, user_id: int, username: str | None, first_name: str | None) -> dict[str, Any]:
        with self._lock:
            user = self._users.setdefault(
                user_id, {"id": user_id, "is_bot": False, "first_name": first_name or "User"}
            )
            if first_name:
                user["first_name"] = first_name
            if username:
                user["username"] = username
            return dict(user)

    def _message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _queue(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        update["update_id"] = update_id
        self._updates.append(update)
        self._wake_pollers()
        return update_id

    def _wake_pollers(self) -> None:
        for poller in self._pollers:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                poller.loop.call_soon_threadsafe(poller.event.set)

    def _changed_record(self, record: _Record) -> None:
        self._revision = next(self._revisions)
        record.revision = self._revision
        self._changed.notify_all()

    def _describe(self) -> str:
        lines = []
        for record in self._records.values():
            snapshot = record.snapshot()
            flags = [f"edited {snapshot.edits}x"] if snapshot.edits else []
            if snapshot.deleted:
                flags.append("deleted")
            body = snapshot.text or f"[document {snapshot.document}] {snapshot.caption or ''}"
            buttons = f" buttons={snapshot.buttons()}" if snapshot.reply_markup else ""
            state = f" ({', '.join(flags)})" if flags else ""
            lines.append(
                f"  chat {snapshot.chat_id} #{snapshot.message_id}: {body!r}{buttons}{state}"
            )
        return "\n".join(lines) or "  (nothing)"

    def _chat(self, params: _Params) -> int:
        """The target chat of a call: an id or @username; refuses blocked chats like Telegram."""
        raw = params.values.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        if isinstance(raw, str) and raw.strip().startswith("@"):
            wanted = raw.strip()[1:].lower()
            found = [
                cid
                for cid, c in self._chats.items()
                if str(c.get("username", "")).lower() == wanted
            ]
            if not found:
                raise _bad("chat not found")
            chat_id = found[0]
        else:
            chat_id = params.integer("chat_id")
        if chat_id not in self._chats:
            if self.strict_chats or chat_id == 0:
                if chat_id > 0:
                    raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
                raise _bad("chat not found")
            self._chats[chat_id] = _guess_chat(chat_id)
        return chat_id

    def _refuse_blocked(self, chat_id: int) -> None:
        if chat_id in self._blocked:
            if self._chats[chat_id]["type"] == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")

    def _markup(self, params: _Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = params.json("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return _check_inline_keyboard(markup)
        if inline_only:
            raise _bad("inline keyboard expected")
        return None  # reply keyboards and ForceReply are not part of the message object

    def _record(self, params: _Params, chat_id: int) -> _Record:
        message_id = params.integer("message_id", required=True)
        record = self._records.get((chat_id, message_id))
        if record is None or record.deleted:
            raise _bad("message to edit not found")
        return record

    def _wire(self, record: _Record) -> dict[str, Any]:
        chat = dict(self._chats[record.chat_id])
        message: dict[str, Any] = {"message_id": record.message_id}
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:  # a message's sender carries only the User fields, not getMe's extras
            message["from"] = {
                k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")
            }
        message.update(chat=chat, date=record.date)
        if record.edit_date is not None:
            message["edit_date"] = record.edit_date
        if record.document is not None:
            message["document"] = dict(record.document)
            if record.caption_plain:
                message["caption"] = record.caption_plain
        else:
            message["text"] = record.plain_text
        if record.markup:
            message["reply_markup"] = copy.deepcopy(record.markup)
        return message

    def _injected_failure(self, name: str) -> ApiError | None:
        queue = self._failures.get(name)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        if failure.status == 429:
            return ApiError(
                429,
                f"Too Many Requests: retry after {failure.retry_after}",
                retry_after=failure.retry_after,
            )
        if failure.status == 403:
            return ApiError(403, "Forbidden: bot was blocked by the user")
        try:
            phrase = HTTPStatus(failure.status).phrase
        except ValueError:
            phrase = "Error"
        return ApiError(failure.status, f"{phrase}: injected failure")

    # --- the HTTP side -------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> JSONResponse:
        token = request.path_params["token"]
        method = request.path_params["method"]
        try:
            if token != self.token:
                if _TOKEN.fullmatch(token):
                    raise ApiError(401, "Unauthorized")
                raise ApiError(404, "Not Found")
            name = self._canonical.get(method.lower())
            with self._lock:
                self._calls[name or method] += 1
                failure = self._injected_failure(name) if name else None
            if name is None:
                raise ApiError(404, "Not Found")
            if failure is not None:
                raise failure
            values, files = await read_parameters(request)
            params = _Params(values, files)
            if name == "getUpdates":
                result = await self._get_updates(params, request)
            else:
                with self._lock:
                    result = self._methods[name](params)
            return JSONResponse({"ok": True, "result": result})
        except ApiError as error:
            log.debug("%s: %s %s", method, error.status, error.description)
            return error.response()
        except Exception:
            log.exception("Bot API emulator failed on %s", method)
            return ApiError(500, "Internal Server Error").response()

    async def _get_updates(self, params: _Params, request: Request) -> list[dict[str, Any]]:
        offset = params.integer("offset", default=0)
        limit = max(1, min(100, params.integer("limit", default=100)))
        timeout = max(0.0, params.number("timeout", 0.0))
        allowed = params.json("allowed_updates")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self._lock:
            self._poll_generation += 1
            generation = self._poll_generation
            self._wake_pollers()  # an earlier long poll ends with 409 Conflict
            if isinstance(allowed, list):
                self._allowed_updates = [str(kind) for kind in allowed] or None
            if offset < 0:
                self._updates = self._updates[offset:]
            elif offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
        disconnected = asyncio.ensure_future(_disconnect(request))
        try:
            while True:
                poller = _Poller(loop)
                with self._lock:
                    if generation != self._poll_generation:
                        raise ApiError(409, _CONFLICT)
                    if self._allowed_updates is not None:
                        self._updates = [
                            u for u in self._updates if _kind(u) in self._allowed_updates
                        ]
                    batch = copy.deepcopy(self._updates[:limit])
                    remaining = deadline - loop.time()
                    if batch or remaining <= 0:
                        return batch
                    self._pollers.append(poller)
                try:
                    woken = asyncio.ensure_future(poller.event.wait())
                    done, _ = await asyncio.wait(
                        {woken, disconnected},
                        timeout=remaining,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    woken.cancel()
                    if disconnected in done:
                        return []  # nobody listens; the updates stay until confirmed
                finally:
                    with self._lock:
                        self._pollers.remove(poller)
        finally:
            disconnected.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await disconnected

    def _delete_webhook(self, params: _Params) -> bool:
        if params.flag("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: _Params) -> dict[str, Any]:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _send_message(self, params: _Params) -> dict[str, Any]:
        chat_id = self._chat(params)
        self._refuse_blocked(chat_id)
        text = params.text("text", required=True)
        parse_mode = params.text("parse_mode")
        plain = check_entities(text, parse_mode)
        if not plain.strip():
            raise _bad("message text is empty")
        if _utf16_len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._markup(params)
        record = _Record(
            chat_id=chat_id,
            message_id=self._message_id(chat_id),
            date=int(self.clock()),
            text=text,
            parse_mode=parse_mode,
            plain_text=plain,
            markup=markup,
            revision=0,
        )
        self._records[(chat_id, record.message_id)] = record
        self._changed_record(record)
        return self._wire(record)

    def _edit_message_text(self, params: _Params) -> dict[str, Any]:
        if params.has("inline_message_id"):
            raise _bad("inline messages are not emulated")
        chat_id = self._chat(params)
        self._refuse_blocked(chat_id)
        record = self._record(params, chat_id)
        if record.document is not None:
            raise _bad("there is no text in the message to edit")
        text = params.text("text", required=True)
        parse_mode = params.text("parse_mode")
        plain = check_entities(text, parse_mode)
        if not plain.strip():
            raise _bad("message text is empty")
        if _utf16_len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._markup(params, inline_only=True)  # no reply_markup removes the keyboard
        if (text, parse_mode, markup) == (record.text, record.parse_mode, record.markup):
            raise _bad(_NOT_MODIFIED[len("Bad Request: ") :])
        record.text, record.parse_mode, record.plain_text = text, parse_mode, plain
        record.markup = markup
        return self._edited(record)

    def _edit_message_reply_markup(self, params: _Params) -> dict[str, Any]:
        if params.has("inline_message_id"):
            raise _bad("inline messages are not emulated")
        chat_id = self._chat(params)
        self._refuse_blocked(chat_id)
        record = self._record(params, chat_id)
        markup = self._markup(params, inline_only=True)
        if markup == record.markup:
            raise _bad(_NOT_MODIFIED[len("Bad Request: ") :])
        record.markup = markup
        return self._edited(record)

    def _edited(self, record: _Record) -> dict[str, Any]:
        record.edits += 1
        record.edit_date = int(self.clock())
        self._changed_record(record)
        return self._wire(record)

    def _delete_message(self, params: _Params) -> bool:
        chat_id = self._chat(params)
        message_id = params.integer("message_id", required=True)
        if (chat_id, message_id) in self._user_messages:
            self._user_messages.discard((chat_id, message_id))
            return True
        record = self._records.get((chat_id, message_id))
        if record is None or record.deleted:
            raise _bad("message to delete not found")
        record.deleted = True
        self._changed_record(record)
        return True

    def _send_document(self, params: _Params) -> dict[str, Any]:
        chat_id = self._chat(params)
        self._refuse_blocked(chat_id)
        filename, content = self._input_file(params, "document")
        caption = params.text("caption")
        parse_mode = params.text("parse_mode")
        caption_plain = check_entities(caption, parse_mode) if caption else None
        if caption_plain and _utf16_len(caption_plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = self._markup(params)
        file_id = f"BQACAgEAAx{next(self._file_ids):08d}"
        self._files[file_id] = (filename, content)
        record = _Record(
            chat_id=chat_id,
            message_id=self._message_id(chat_id),
            date=int(self.clock()),
            text="",
            parse_mode=parse_mode,
            plain_text="",
            markup=markup,
            revision=0,
            caption=caption,
            caption_plain=caption_plain,
            document={
                "file_id": file_id,
                "file_unique_id": hashlib.sha256(content).hexdigest()[:16],
                "file_name": filename,
                "file_size": len(content),
            },
        )
        self._records[(chat_id, record.message_id)] = record
        self._documents.append((chat_id, filename, content, caption))
        self._changed_record(record)
        return self._wire(record)

    def _input_file(self, params: _Params, name: str) -> tuple[str, bytes]:
        if name in params.files:
            return params.files[name]
        reference = params.text(name)
        if reference and reference.startswith("attach://"):
            attached = params.files.get(reference[len("attach://") :])
            if attached is None:
                raise _bad(f"can't find attached file {reference}")
            return attached
        if reference and reference in self._files:
            return self._files[reference]
        if reference:
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {name} in the request")

    def _send_chat_action(self, params: _Params) -> bool:
        chat_id = self._chat(params)
        self._refuse_blocked(chat_id)
        if not params.has("action"):
            raise _bad("action is empty")
        return True

    def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.text("callback_query_id", required=True)
        if query_id not in self._open_queries:
            raise _bad(_QUERY_INVALID[len("Bad Request: ") :])
        self._open_queries.discard(query_id)
        self._answered.append((query_id, params.text("text"), params.flag("show_alert")))
        self._changed.notify_all()
        return True

    def _scope_key(self, params: _Params) -> str:
        scope = params.json("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
            raise _bad("can't parse BotCommandScope JSON object")
        kind = scope["type"]
        key = kind
        if kind in ("chat", "chat_administrators", "chat_member"):
            scoped = _Params(scope, {})
            key = f"{kind}:{scoped.integer('chat_id', required=True)}"
            if kind == "chat_member":
                key += f":{scoped.integer('user_id', required=True)}"
        language = params.text("language_code")
        return f"{key}/{language}" if language else key

    def _set_my_commands(self, params: _Params) -> bool:
        commands = params.json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        checked = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _BOT_COMMAND.fullmatch(name.removeprefix("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            checked.append({"command": name.removeprefix("/"), "description": description})
        key = self._scope_key(params)
        if checked:
            self._commands[key] = checked
        else:
            self._commands.pop(key, None)
        self._changed.notify_all()
        return True

    def _get_my_commands(self, params: _Params) -> list[dict[str, str]]:
        return copy.deepcopy(self._commands.get(self._scope_key(params), []))

    def _delete_my_commands(self, params: _Params) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True


# --- helpers -------------------------------------------------------------------------------------
async def _not_found(request: Request) -> JSONResponse:
    return ApiError(404, "Not Found").response()


async def _disconnect(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so only that can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _kind(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _chat_instance(chat_id: int) -> str:
    digest = hashlib.sha256(f"chat-instance:{chat_id}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> 1)


def _guess_chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "User"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}
