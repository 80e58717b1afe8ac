"""The HTTP side of `BotApiEmulator`: the Starlette endpoint, long polling and the methods.

`_Routes` is a mixin of `BotApiEmulator` (simulators.telegram.emulator): its state (the lock,
the chats, the records, ...) and internals (`_chat`, `_wire`, ...) are the emulator's, and
its methods are called with the emulator's lock held, except `_endpoint` and `_get_updates`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from simulators.telegram.entities import _Poller, _Record
from simulators.telegram.markup import check_entities
from simulators.telegram.wire import (
    _BOT_COMMAND,
    _CONFLICT,
    _NOT_MODIFIED,
    _QUERY_INVALID,
    _SCOPES,
    _TOKEN,
    MAX_CAPTION,
    MAX_TEXT,
    ApiError,
    _bad,
    _Params,
    _utf16_len,
    read_parameters,
)

log = logging.getLogger("flamepay.telegram_emulator")


class _Routes:
    """The Bot API methods and the HTTP endpoint of `BotApiEmulator` (a mixin of it)."""

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
