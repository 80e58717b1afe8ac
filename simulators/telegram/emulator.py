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

import contextlib
import copy
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from simulators.telegram.entities import SentMessage, _Failure, _Poller, _Record
from simulators.telegram.markup import _check_inline_keyboard
from simulators.telegram.routes import _chat_instance, _guess_chat, _not_found, _Routes
from simulators.telegram.wire import _COMMAND, _TOKEN, ApiError, _bad, _Params, _utf16_len


# --- the emulator --------------------------------------------------------------------------------
class BotApiEmulator(_Routes):
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
