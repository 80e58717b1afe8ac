"""Telegram's rules for what a bot sends: URL buttons, HTML and MarkdownV2 entity parsing
("can't parse entities"), and the checks of an inline keyboard."""

from __future__ import annotations

import copy
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from simulators.telegram.wire import (
    _NUMERIC_HOST,
    _PARSE_MODES,
    MAX_CALLBACK_DATA,
    ApiError,
    _bad,
)


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
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "blockquote",
    "tg-time",
}
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
            raise _bad(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for button in row:
            if not isinstance(button, dict):
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            if not isinstance(button.get("text"), str):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            actions = [k for k in button if k != "text" and button[k] is not None]
            if not actions:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in "
                    "the inline keyboard"
                )
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
