"""What the bot sent, as the tests see it (`SentMessage`), and the emulator's own records."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any


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
