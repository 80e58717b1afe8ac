"""A Telegram Bot API emulator: enough of the Bot API for a real python-telegram-bot bot.

What it emulates and how to use it: see `simulators.telegram.emulator`. The modules:
`entities` (what the bot sent, as the tests see it, and the emulator's records), `wire` (Bot
API errors and limits, request parsing), `markup` (Telegram's checks of HTML/MarkdownV2 texts
and inline keyboards), `routes` (the HTTP side: the Starlette endpoint and the methods) and
`emulator` (`BotApiEmulator`, the test-side API).
"""

from simulators.telegram.emulator import BotApiEmulator
from simulators.telegram.entities import SentMessage
from simulators.telegram.markup import button_url_allowed, check_entities
from simulators.telegram.wire import MAX_CALLBACK_DATA as MAX_CALLBACK_DATA
from simulators.telegram.wire import MAX_CAPTION as MAX_CAPTION
from simulators.telegram.wire import MAX_TEXT as MAX_TEXT
from simulators.telegram.wire import ApiError as ApiError
from simulators.telegram.wire import parse_multipart as parse_multipart
from simulators.telegram.wire import read_parameters as read_parameters

__all__ = ["BotApiEmulator", "SentMessage", "button_url_allowed", "check_entities"]
