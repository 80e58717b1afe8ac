"""The Bot API emulator against a real python-telegram-bot, over loopback sockets.

The emulator is served by Hypercorn in its own thread (entrypoints.serving); PTB runs on an
event loop in a second thread; the test thread plays the users and reads what the bot sent.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import gc
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import telegram
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from entrypoints.serving import serving
from simulators.telegram import BotApiEmulator, SentMessage, button_url_allowed

TOKEN = "123456789:AAFlamePayEmulator-test_token"
USER = 4242
T = TypeVar("T")


# --- plumbing: an event loop in a thread, the served emulator, a PTB bot and application --------
class LoopThread:
    """An asyncio loop running in a thread of its own; `run` waits for a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ptb-loop", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return self.submit(coroutine).result(timeout)

    def close(self) -> None:
        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

        self.run(finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (extra := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not extra, f"threads left running: {extra}"
    gc.collect()  # an unclosed socket or transport warns now, in the test that leaked it


@pytest.fixture
def emulator() -> BotApiEmulator:
    return BotApiEmulator(TOKEN)


@pytest.fixture
def api_url(emulator: BotApiEmulator) -> Iterator[str]:
    with serving(emulator.app) as url:
        yield url


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def bot(api_url: str, loop: LoopThread) -> Iterator[telegram.Bot]:
    """A plain PTB Bot (no polling) talking to the emulator."""
    bot = telegram.Bot(TOKEN, base_url=f"{api_url}/bot")
    loop.run(bot.initialize())
    yield bot
    loop.run(bot.shutdown())


class Seen:
    """What the handlers of the running application saw, readable from the test thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.commands: list[tuple[int, str]] = []
        self.callbacks: list[str] = []


@pytest.fixture
def running(api_url: str, loop: LoopThread) -> Iterator[Seen]:
    """A PTB Application polling the emulator, with a /start command and a button handler."""
    seen = Seen()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        with seen.lock:
            seen.commands.append((update.effective_chat.id, update.message.text))
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Pay", callback_data="pay:7")],
                [InlineKeyboardButton("Help", callback_data="help")],
            ]
        )
        await update.message.reply_text(
            f"Hello <b>{update.effective_user.first_name}</b>",
            parse_mode="HTML",
            reply_markup=keyboard,
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        with seen.lock:
            seen.callbacks.append(query.data)
        await query.answer(f"got {query.data}")
        await query.edit_message_text(f"You chose {query.data}")

    application = Application.builder().token(TOKEN).base_url(f"{api_url}/bot").build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))

    async def go() -> None:
        await application.initialize()
        await application.start()
        await application.updater.start_polling(poll_interval=0.0, timeout=1)

    async def stop() -> None:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()

    loop.run(go())
    try:
        yield seen
    finally:
        loop.run(stop())


# --- a real application: commands and buttons ----------------------------------------------------
def test_a_command_from_a_user_is_answered(emulator: BotApiEmulator, running: Seen) -> None:
    update_id = emulator.send_message(USER, "/start", username="alice", first_name="Alice")

    reply = emulator.wait_for_text(USER, "Hello Alice")
    assert update_id >= 1
    assert reply.text == "Hello <b>Alice</b>" and reply.plain_text == "Hello Alice"
    assert reply.parse_mode == "HTML"
    assert reply.buttons() == [("Pay", "pay:7"), ("Help", "help")]
    assert reply.date == pytest.approx(time.time(), abs=5)
    assert running.commands == [(USER, "/start")]
    assert emulator.call_counts["getMe"] == 1 and emulator.call_counts["deleteWebhook"] == 1


def test_commands_in_groups_match_only_this_bots_mention(
    emulator: BotApiEmulator, running: Seen
) -> None:
    group = -1001234567
    emulator.send_message(USER, "/start@other_bot", chat_type="supergroup", chat_id=group)
    emulator.send_message(USER, "/start@flamepay_bot now", chat_type="supergroup", chat_id=group)

    emulator.wait_for_text(group, "Hello User")
    assert running.commands == [(group, "/start@flamepay_bot now")]  # updates run in order
    assert [m.chat_id for m in emulator.messages()] == [group]


def test_a_button_press_reaches_the_callback_handler(
    emulator: BotApiEmulator, running: Seen
) -> None:
    emulator.send_message(USER, "/start")
    menu = emulator.wait_for_text(USER, "Hello")

    query_id = emulator.press_button(USER, menu.message_id, "pay:7")

    edited = emulator.wait_for(lambda m: m.message_id == menu.message_id and m.edits == 1)
    assert edited.text == "You chose pay:7"
    assert edited.reply_markup is None  # editMessageText without reply_markup drops the keyboard
    assert running.callbacks == ["pay:7"]
    assert emulator.answered_callbacks == [(query_id, "got pay:7", False)]
    assert [m.message_id for m in emulator.messages(USER)] == [menu.message_id]


def test_a_press_on_a_message_the_bot_never_sent_is_refused(emulator: BotApiEmulator) -> None:
    with pytest.raises(ValueError, match="no message 3"):
        emulator.press_button(USER, 3, "pay:7")


# --- methods, called with a plain PTB Bot --------------------------------------------------------
def test_edit_message_text_changes_the_stored_text(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Check", callback_data="st:1")]])
    sent = loop.run(bot.send_message(USER, "Order 1: open", reply_markup=keyboard))

    edited = loop.run(
        bot.edit_message_text(
            "Order 1: paid", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard
        )
    )
    assert edited.text == "Order 1: paid" and edited.edit_date is not None
    [stored] = emulator.messages(USER)
    assert (stored.text, stored.edits, stored.buttons()) == (
        "Order 1: paid",
        1,
        [("Check", "st:1")],
    )

    with pytest.raises(BadRequest, match="not modified"):
        loop.run(
            bot.edit_message_text(
                "Order 1: paid", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard
            )
        )
    loop.run(bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id))
    [stored] = emulator.messages(USER)
    assert (stored.text, stored.edits, stored.reply_markup) == ("Order 1: paid", 2, None)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        loop.run(bot.edit_message_text("x", chat_id=USER, message_id=99))


def test_set_my_commands_is_recorded_per_scope(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    everyone = [BotCommand("start", "Open the menu"), BotCommand("balance", "Your balance")]
    admin = [*everyone, BotCommand("stats", "Statistics")]

    assert loop.run(bot.set_my_commands(everyone)) is True
    assert loop.run(bot.set_my_commands(admin, scope=BotCommandScopeChat(USER))) is True

    assert emulator.commands == {
        "default": [{"command": c.command, "description": c.description} for c in everyone],
        f"chat:{USER}": [{"command": c.command, "description": c.description} for c in admin],
    }
    fetched = loop.run(bot.get_my_commands(scope=BotCommandScopeChat(USER)))
    assert [c.command for c in fetched] == ["start", "balance", "stats"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        loop.run(bot.set_my_commands([BotCommand("Pay-Now", "not a command name")]))


def test_send_document_records_the_bytes(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    content = bytes(range(256)) + b"\r\n--boundary-like\r\n\x00\xff"
    name = 'отчёт "2024".csv'

    sent = loop.run(bot.send_document(USER, content, filename=name, caption="Report ü"))

    assert emulator.documents == [(USER, name, content, "Report ü")]
    assert (sent.document.file_name, sent.document.file_size) == (name, len(content))
    assert sent.caption == "Report ü"
    [stored] = emulator.messages(USER)
    assert (stored.document, stored.caption, stored.text) == (name, "Report ü", "")
    loop.run(bot.send_document(USER, sent.document.file_id))  # again by file_id: urlencoded
    assert emulator.documents[1] == (USER, name, content, None)


def test_delete_message_marks_it_deleted(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    kept = loop.run(bot.send_message(USER, "kept"))
    gone = loop.run(bot.send_message(USER, "gone"))

    assert loop.run(bot.delete_message(USER, gone.message_id)) is True

    assert [(m.text, m.deleted) for m in emulator.messages(USER)] == [
        ("kept", False),
        ("gone", True),
    ]
    assert gone.message_id == kept.message_id + 1
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        loop.run(bot.delete_message(USER, gone.message_id))


def test_429_reaches_ptb_as_retry_after_with_its_value(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB 22 warns (PTBDeprecationWarning) when RetryAfter is built unless it may use timedelta
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    emulator.fail_next("sendMessage", status=429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        loop.run(bot.send_message(USER, "too fast"))

    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert loop.run(bot.send_message(USER, "later")).text == "later"  # only the next call failed
    assert emulator.call_counts["sendMessage"] == 2
    assert [m.text for m in emulator.messages()] == ["later"]


def test_blocked_users_and_injected_failures_answer_403_and_500(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    emulator.block(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        loop.run(bot.send_message(USER, "hello?"))
    with pytest.raises(Forbidden):
        loop.run(bot.send_document(USER, b"x", filename="x.txt"))

    emulator.fail_next("sendMessage", status=403, count=2)
    for _ in range(2):
        with pytest.raises(Forbidden, match="blocked"):
            loop.run(bot.send_message(USER + 1, "hello?"))
    emulator.fail_next("sendMessage", status=500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        loop.run(bot.send_message(USER + 1, "hello?"))

    emulator.unblock(USER)
    assert loop.run(bot.send_message(USER, "welcome back")).chat_id == USER
    assert [m.text for m in emulator.messages()] == ["welcome back"]


def test_url_buttons_to_local_addresses_are_refused_like_telegram(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    def send(url: str) -> telegram.Message:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Pay now", url=url)]])
        return loop.run(bot.send_message(USER, "Order 1", reply_markup=markup))

    for url in ("http://127.0.0.1:9000/cashier/1", "https://localhost/pay", "ftp://example.com/"):
        with pytest.raises(BadRequest) as refused:
            send(url)
        assert "BUTTON_URL_INVALID" in refused.value.message.upper(), url

    accepted = send("https://example.com/cashier/1")
    assert accepted.reply_markup.inline_keyboard[0][0].url == "https://example.com/cashier/1"
    [stored] = emulator.messages()
    assert stored.buttons() == [("Pay now", "https://example.com/cashier/1")]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.com/pay?x=1", True),
        ("http://pay.example.org:8443/", True),
        ("https://203.0.113.7/", False),  # documentation range: not global
        ("https://8.8.8.8/", True),
        ("tg://resolve?domain=flamepay_bot", True),
        ("http://127.0.0.1/", False),
        ("http://127.1/", False),
        ("http://2130706433/", False),
        ("http://[::1]:8000/", False),
        ("http://[::ffff:127.0.0.1]/", False),
        ("https://192.168.1.10/", False),
        ("https://10.0.0.1/", False),
        ("https://169.254.169.254/latest", False),
        ("https://LOCALHOST./", False),
        ("https://shop.localhost/", False),
        ("ftp://example.com/", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://example.com:99999/", False),
        ("", False),
    ],
)
def test_button_url_rule(url: str, allowed: bool) -> None:
    assert button_url_allowed(url) is allowed


def test_texts_are_parsed_like_telegram(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    for text, mode in [("Amount < 5", "HTML"), ("<b>open", "HTML"), ("1.50 CNY", "MarkdownV2")]:
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            loop.run(bot.send_message(USER, text, parse_mode=mode))
    ok = loop.run(bot.send_message(USER, "Amount &lt; <i>5</i> &amp; more", parse_mode="HTML"))
    assert ok.text == "Amount < 5 & more"
    ok = loop.run(bot.send_message(USER, "*1\\.50* CNY", parse_mode="MarkdownV2"))
    assert ok.text == "1.50 CNY"
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        loop.run(bot.send_message(USER, "x" * 4097))
    assert [m.plain_text for m in emulator.messages()] == ["Amount < 5 & more", "1.50 CNY"]


def test_a_callback_query_can_be_answered_once(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    sent = loop.run(bot.send_message(USER, "menu"))
    query_id = emulator.press_button(USER, sent.message_id, "help")
    [update] = loop.run(bot.get_updates())

    assert update.callback_query.id == query_id and update.callback_query.data == "help"
    assert update.callback_query.message.message_id == sent.message_id
    assert update.callback_query.chat_instance
    assert loop.run(bot.answer_callback_query(query_id, "Done", show_alert=True)) is True
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        loop.run(bot.answer_callback_query(query_id))
    assert emulator.answered_callbacks == [(query_id, "Done", True)]


# --- getUpdates: long polling and offsets --------------------------------------------------------
def test_a_long_poll_returns_as_soon_as_an_update_arrives(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    async def poll() -> tuple[tuple[Update, ...], float]:
        started = time.monotonic()
        updates = await bot.get_updates(timeout=10)
        return updates, time.monotonic() - started

    polling = loop.submit(poll())
    wait_until(lambda: emulator.waiting_polls == 1)
    time.sleep(0.2)
    update_id = emulator.send_message(USER, "/start")

    updates, elapsed = polling.result(5)
    assert [u.update_id for u in updates] == [update_id]
    assert updates[0].message.text == "/start"
    assert 0.2 <= elapsed < 1.0
    assert emulator.waiting_polls == 0


def test_a_long_poll_ends_when_its_client_goes_away(emulator: BotApiEmulator, api_url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{api_url}/bot{TOKEN}/getUpdates", data={"timeout": 30}, timeout=0.5)
    wait_until(lambda: emulator.waiting_polls == 0, timeout=2)


def test_a_long_poll_without_updates_returns_nothing_after_its_timeout(
    bot: telegram.Bot, loop: LoopThread
) -> None:
    started = time.monotonic()
    assert loop.run(bot.get_updates(timeout=1)) == ()
    assert 0.9 <= time.monotonic() - started < 3


def test_offsets_confirm_updates(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    ids = [emulator.send_message(USER, f"message {n}") for n in range(3)]

    assert [u.update_id for u in loop.run(bot.get_updates(limit=2))] == ids[:2]
    assert [u.update_id for u in loop.run(bot.get_updates())] == ids  # nothing confirmed yet
    assert [u.update_id for u in loop.run(bot.get_updates(offset=ids[1]))] == ids[1:]
    assert loop.run(bot.get_updates(offset=ids[2] + 1)) == ()
    assert emulator.pending_updates == 0

    later = [emulator.send_message(USER, f"later {n}") for n in range(3)]
    assert [u.update_id for u in loop.run(bot.get_updates(offset=-1))] == later[-1:]
    assert [u.update_id for u in loop.run(bot.get_updates())] == later[-1:]
    messages = [u.message for u in loop.run(bot.get_updates())]
    assert [(m.message_id, m.chat.id, m.from_user.id) for m in messages] == [(6, USER, USER)]


def test_a_second_poller_ends_the_first_with_409(
    api_url: str, bot: telegram.Bot, loop: LoopThread
) -> None:
    first = loop.submit(bot.get_updates(timeout=5))
    time.sleep(0.3)
    second = telegram.Bot(TOKEN, base_url=f"{api_url}/bot")  # a second instance of the bot
    loop.run(second.initialize())  # else shutdown() would not close its connections
    try:
        assert loop.run(second.get_updates()) == ()
    finally:
        loop.run(second.shutdown())
    with pytest.raises(Conflict, match="other getUpdates request"):
        first.result(5)


# --- tokens, methods and the wire ----------------------------------------------------------------
def test_a_wrong_token_is_refused(emulator: BotApiEmulator, api_url: str, loop: LoopThread) -> None:
    wrong = telegram.Bot("987654321:WrongToken", base_url=f"{api_url}/bot")
    with pytest.raises(InvalidToken, match="rejected"):
        loop.run(wrong.initialize())
    with pytest.raises(InvalidToken, match="Unauthorized"):
        loop.run(wrong.get_me())
    loop.run(wrong.shutdown())

    answer = httpx.post(f"{api_url}/bot987654321:WrongToken/getMe")
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert httpx.post(f"{api_url}/botnonsense/getMe").status_code == 404
    assert emulator.call_counts == {}


def test_unknown_methods_answer_404(
    emulator: BotApiEmulator, api_url: str, bot: telegram.Bot, loop: LoopThread
) -> None:
    answer = httpx.post(f"{api_url}/bot{TOKEN}/frobnicateWidgets", data={"chat_id": USER})
    assert answer.status_code == 404
    assert answer.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    with pytest.raises(EndPointNotFound):
        loop.run(bot.do_api_request("frobnicate_widgets", api_kwargs={"chat_id": USER}))
    assert httpx.get(f"{api_url}/elsewhere").json()["ok"] is False


def test_json_urlencoded_and_query_string_bodies_are_understood(
    emulator: BotApiEmulator, api_url: str
) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    as_json = httpx.post(
        f"{api_url}/bot{TOKEN}/sendMessage",
        json={"chat_id": USER, "text": "json", "reply_markup": markup},
    ).json()
    as_form = httpx.post(
        f"{api_url}/bot{TOKEN}/sendmessage",  # method names are case-insensitive
        data={"chat_id": str(USER), "text": "form", "reply_markup": json.dumps(markup)},
    ).json()
    as_query = httpx.get(f"{api_url}/bot{TOKEN}/sendMessage", params={"chat_id": USER, "text": "q"})

    assert as_json["ok"] and as_json["result"]["reply_markup"] == markup
    assert as_form["ok"] and as_form["result"]["text"] == "form"
    assert as_query.json()["result"]["message_id"] == 3
    assert [m.buttons() for m in emulator.messages()] == [[("Go", "go")], [("Go", "go")], []]
    assert emulator.call_counts["sendMessage"] == 3
    bad = httpx.post(f"{api_url}/bot{TOKEN}/sendMessage", data={"chat_id": USER, "text": " "})
    assert (
        bad.status_code == 400 and bad.json()["description"] == "Bad Request: message text is empty"
    )


def test_wait_for_lists_what_was_sent_when_nothing_matches(
    emulator: BotApiEmulator, bot: telegram.Bot, loop: LoopThread
) -> None:
    loop.run(bot.send_message(USER, "Your balance: 5.00"))
    first = emulator.wait_for_text(USER, "balance", timeout=1)
    assert isinstance(first, SentMessage)

    with pytest.raises(AssertionError, match=r"Your balance: 5\.00"):
        emulator.wait_for_text(USER, "balance", timeout=0.2, after=first.revision)
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"no bot message matched within 0\.3s"):
        emulator.wait_for(lambda m: m.edits > 0, timeout=0.3)
    assert time.monotonic() - started >= 0.3
