"""Headless Chromium driven over the DevTools protocol, for the browser tests.

No extra Python package: Chromium is started with --remote-debugging-port on a free loopback
port, its page target is found through the /json/list endpoint, and the DevTools WebSocket is
spoken with wsproto (already installed: Hypercorn depends on it) over a plain socket.

    with Chromium() as browser:
        browser.navigate(url)
        browser.evaluate("document.getElementById('pay').click()")
        browser.wait_for_load()
        png = browser.screenshot()
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from entrypoints.serving import free_port

CHROMIUM = Path("/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


class BrowserError(Exception):
    pass


class DevToolsSocket:
    """One DevTools WebSocket: commands with ids, answers matched by id, events queued."""

    def __init__(self, ws_url: str, timeout: float = 30) -> None:
        parts = urlsplit(ws_url)
        assert parts.hostname and parts.port
        self.timeout = timeout
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._next_id = 0
        self._partial: list[str] = []
        self._messages: deque[dict[str, Any]] = deque()
        self.events: deque[dict[str, Any]] = deque()
        self._send(Request(host=f"{parts.hostname}:{parts.port}", target=parts.path or "/"))
        deadline = time.monotonic() + timeout
        while True:
            for event in self._read(deadline):
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    raise BrowserError(f"DevTools refused the WebSocket ({event.status_code})")

    def _send(self, event: Any) -> None:
        self._sock.sendall(self._ws.send(event))

    def _read(self, deadline: float) -> list[Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError("DevTools did not answer in time")
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(1 << 16)
        except TimeoutError:
            raise BrowserError("DevTools did not answer in time") from None
        if not data:
            raise BrowserError("DevTools closed the connection")
        self._ws.receive_data(data)
        events = []
        for event in self._ws.events():
            if isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, CloseConnection):
                raise BrowserError(f"DevTools closed the WebSocket ({event.code})")
            elif isinstance(event, TextMessage):
                self._partial.append(event.data)
                if event.message_finished:
                    self._messages.append(json.loads("".join(self._partial)))
                    self._partial.clear()
            else:
                events.append(event)
        return events

    def _next_message(self, deadline: float) -> dict[str, Any]:
        while not self._messages:
            self._read(deadline)
        return self._messages.popleft()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self._send(Message(data=json.dumps({"id": ident, "method": method, "params": params})))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._next_message(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """The params of the first queued or coming event called `name` (earlier ones of other
        names are dropped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while self.events:
                event = self.events.popleft()
                if event["method"] == name:
                    return event.get("params", {})
            message = self._next_message(deadline)
            if "method" in message:
                self.events.append(message)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may be gone already
            self._send(CloseConnection(code=1000))
        self._sock.close()


class Chromium:
    """A headless Chromium process with one page, for the length of a `with` block."""

    def __init__(self, executable: Path = CHROMIUM, width: int = 900, height: int = 700) -> None:
        self.executable = executable
        self.size = (width, height)
        self.process: subprocess.Popen | None = None
        self.page: DevToolsSocket | None = None
        self._profile = ""

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="flamepay-chromium-")
        port = free_port()
        log = Path(self._profile, "chromium.log").open("wb")
        try:
            self.process = subprocess.Popen(
                [
                    str(self.executable),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--no-proxy-server",
                    f"--window-size={self.size[0]},{self.size[1]}",
                    f"--user-data-dir={self._profile}",
                    f"--remote-debugging-port={port}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        try:
            self.page = DevToolsSocket(self._page_target(port))
            self.page.call("Page.enable")
            self.page.call("Runtime.enable")
            width, height = self.size  # the viewport, hence the screenshots' size
            self.page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _page_target(self, port: int) -> str:
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise BrowserError(f"chromium exited ({self.process.returncode}): {self.log()}")
                try:
                    targets = http.get("/json/list").json()
                except (httpx.TransportError, ValueError):
                    time.sleep(0.1)
                    continue
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
                time.sleep(0.1)
        raise BrowserError(f"chromium's DevTools did not come up: {self.log()}")

    def log(self) -> str:
        path = Path(self._profile, "chromium.log")
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def __exit__(self, *exc_info: object) -> None:
        if self.page is not None:
            self.page.close()
            self.page = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
            self.process = None
        shutil.rmtree(self._profile, ignore_errors=True)

    # --- what the tests do ----------------------------------------------------------------------
    @property
    def devtools(self) -> DevToolsSocket:
        if self.page is None:
            raise BrowserError("the browser is not running")
        return self.page

    def navigate(self, url: str) -> None:
        self.devtools.events.clear()
        result = self.devtools.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        self.devtools.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.devtools.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, element_id: str) -> None:
        """Click the element and wait until the page it leads to has loaded."""
        self.devtools.events.clear()
        found = self.evaluate(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"no #{element_id} on {self.url}")
        self.devtools.wait_event("Page.loadEventFired")

    def text(self, element_id: str) -> str | None:
        return self.evaluate(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
            " return e ? e.textContent : null; })()"
        )

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.devtools.call("Page.captureScreenshot", format="png")["data"])
