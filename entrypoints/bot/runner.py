"""The bot's event loop in a thread of its own: for `flamepay demo` and the tests, which
drive the real bot from synchronous code while it polls the emulator."""

from __future__ import annotations

import asyncio
import threading

from entrypoints.bot.application import BotRuntime


class BotThread:
    """Runs the bot's event loop in a thread of its own, as `flamepay bot` runs it."""

    def __init__(self, runtime: BotRuntime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.runtime.start())
        except BaseException as error:
            self._failure.append(error)
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self._started.wait(30)
        if self._failure:
            raise RuntimeError("the bot did not start") from self._failure[0]

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive() and not self._failure:
            self.call(self.runtime.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
        self.loop.close()
