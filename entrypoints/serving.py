"""Serving ASGI apps with Hypercorn on loopback ports, in a thread of their own.

Used by the tests (real sockets, no mocks) and by `flamepay demo`, which runs the sandbox, the
callback app and the Bot API emulator side by side without any network.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hypercorn.asyncio import serve
from hypercorn.config import Config


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 5
    return config


@contextmanager
def serving(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    port = port or free_port(host)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        config = hypercorn_config(host, port)
        task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))
        for _ in range(200):  # wait until the port answers
            try:
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
                break
            except OSError:
                if task.done():
                    break
                await asyncio.sleep(0.02)
        started.set()
        await task

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as error:
            failure.append(error)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"serve-{port}", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise RuntimeError(f"could not serve on {host}:{port}") from failure[0]
    try:
        yield f"http://{host}:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
