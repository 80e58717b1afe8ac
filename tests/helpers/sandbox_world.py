"""A sandbox gateway on loopback with a notify receiver and a signed client (the open_world
fixture), and a reader for the cashier page: what the sandbox tests drive."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import DIALECTS, Merchant
from adapters.provider.notify import Notify, parse_notify
from entrypoints.serving import free_port, serving
from flamepay.order import OrderState
from flamepay.ports import CreateOrderRequest
from flamepay.report import ProviderReport
from simulators.sandbox import Sandbox, SandboxConfig, SandboxOrder, build_app

MCH_NO = "M1700000001"
KEY = "sandbox-test-key-7f3a9c"
APP_ID = "app-sbx-1"
CLIENT_IP = "203.0.113.7"
DIALECT_NAMES = ("ggusonepay", "jeepay")
FORM = "application/x-www-form-urlencoded"
QUIET = 0.6  # seconds to wait before concluding that no (further) notify comes


# --- the merchant's notify receiver ------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    method: str
    content_type: str
    query: bytes
    body: bytes


class Receiver:
    """A merchant notify endpoint that records every request. `answers` are (status, body)
    pairs (or a body for status 200) used one per request; after them it answers 'success'."""

    def __init__(self, answers: Sequence[str | tuple[int, str]] = ()) -> None:
        self.answers = [a if isinstance(a, tuple) else (200, a) for a in answers]
        self.received: list[Received] = []
        self._changed = threading.Condition()

    def app(self) -> Starlette:
        async def notify(request: Request) -> Response:
            body = await request.body()
            with self._changed:
                self.received.append(
                    Received(
                        time.monotonic(),
                        request.method,
                        request.headers.get("content-type", ""),
                        request.scope.get("query_string", b""),
                        body,
                    )
                )
                status, text = self.answers.pop(0) if self.answers else (200, "success")
                self._changed.notify_all()
            return PlainTextResponse(text, status_code=status)

        return Starlette(routes=[Route("/notify", notify, methods=["GET", "POST"])])

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """What arrived once `count` requests are in, or when `timeout` has passed."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def settled(self, quiet: float = QUIET) -> list[Received]:
        """Everything received, after `quiet` seconds without a new request."""
        while True:
            seen = len(self.received)
            time.sleep(quiet)
            if len(self.received) == seen:
                return list(self.received)


def verified(received: Received, keys: Sequence[str] = (KEY,)) -> Notify:
    return parse_notify(received.body, received.content_type, received.query, list(keys))


# --- the cashier page, read like a browser reads it --------------------------------------------
@dataclass
class Form:
    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)
    buttons: list[str] = field(default_factory=list)  # button ids


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    within: tuple[str, ...]  # the ids of the enclosing elements
    text: str = ""


class Page(HTMLParser):
    """The elements (with their text), those with an id, the forms, and the page's text."""

    VOID = frozenset({"input", "br", "meta", "img", "hr", "link"})

    def __init__(self, url: str, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.elements: list[Element] = []
        self.ids: dict[str, Element] = {}
        self.forms: list[Form] = []
        self._stack: list[Element] = []
        self._texts: list[str] = []
        self.feed(markup)
        self.close()

    @property
    def text(self) -> str:
        return " ".join("".join(self._texts).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].inputs[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(values.get("id", ""))
        within = tuple(e.attrs["id"] for e in self._stack if "id" in e.attrs)
        element = Element(tag, values, within)
        self.elements.append(element)
        if "id" in values:
            self.ids[values["id"]] = element
        if tag not in self.VOID:
            self._stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self._texts.append(data)
        for element in self._stack:
            element.text += data

    def get(self, ident: str) -> str:
        """The text of the element with this id (KeyError when absent)."""
        return " ".join(self.ids[ident].text.split())

    def first(self, tag: str) -> str:
        return next(" ".join(e.text.split()) for e in self.elements if e.tag == tag)

    def items(self, ident: str) -> list[str]:
        """The texts of the list items inside the element with this id."""
        return [
            " ".join(e.text.split()) for e in self.elements if e.tag == "li" and ident in e.within
        ]

    def form_with(self, button_id: str) -> Form:
        for form in self.forms:
            if button_id in form.buttons:
                return form
        raise LookupError(f"no form with a #{button_id} button on {self.url}")


# --- a sandbox, a receiver and a client --------------------------------------------------------
class FakeClock:
    def __init__(self, now: float = 1_767_268_800.0) -> None:  # 2026-01-01 12:00 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    sandbox: Sandbox
    base_url: str
    receiver: Receiver
    receiver_url: str
    client: HttpProviderGateway
    dialect: str
    browser: httpx.Client  # plain requests to the cashier, like a browser without scripts
    numbers: Iterator[int]

    def create(
        self,
        amount: int = 1234,
        expired_seconds: int = 1800,
        ext_param: str = "",
        number: str | None = None,
        currency: str = "USD",
    ) -> ProviderReport:
        number = number or f"FP{time.time_ns() % 10**12:012d}{next(self.numbers)}"
        request = CreateOrderRequest(
            number, amount, currency, "ALI_QR", "Package", expired_seconds, ext_param
        )
        return self.client.create_order(request)

    def order(self, report: ProviderReport) -> SandboxOrder:
        return self.sandbox.orders[report.mch_order_no]

    def page(self, report_or_url: ProviderReport | str) -> Page:
        url = report_or_url if isinstance(report_or_url, str) else report_or_url.cashier_url
        assert url is not None
        response = self.browser.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        return Page(str(response.url), response.text)

    def click(self, page: Page, button_id: str, **values: str) -> Page:
        """Submit the form holding #button_id, with its inputs (changed by `values`), and
        follow the answer's redirect like a browser."""
        form = page.form_with(button_id)
        assert form.method == "post"
        fields = {**form.inputs, **values}
        response = self.browser.post(urljoin(page.url, form.action), data=fields)
        assert response.status_code == 200, response.text
        assert [r.status_code for r in response.history] == [303]
        return Page(str(response.url), response.text)

    def query_state(self, report: ProviderReport) -> OrderState:
        return self.client.query_order(report.mch_order_no).state

    def wait_for_state(self, report: ProviderReport, state: int, timeout: float) -> float:
        """Seconds until the sandbox's order reaches `state` (fails after `timeout`)."""
        start = time.monotonic()
        while self.order(report).state != state:
            assert time.monotonic() - start < timeout, f"state stayed {self.order(report).state}"
            time.sleep(0.01)
        return time.monotonic() - start


OpenWorld = Callable[..., World]


@pytest.fixture
def open_world() -> Iterator[OpenWorld]:
    """open_world(dialect, answers=..., clock=..., key=..., **SandboxConfig fields) -> World."""
    with contextlib.ExitStack() as stack:

        def open_(
            dialect: str = "ggusonepay",
            answers: Sequence[str | tuple[int, str]] = (),
            clock: Callable[[], float] = time.time,
            key: str = KEY,
            notify_url: str | None = None,
            **config: Any,
        ) -> World:
            receiver = Receiver(answers)
            receiver_url = stack.enter_context(serving(receiver.app()))
            port = free_port()
            sandbox = Sandbox(
                SandboxConfig(MCH_NO, KEY, APP_ID, public_url=f"http://127.0.0.1:{port}", **config),
                clock=clock,
            )
            base_url = stack.enter_context(serving(build_app(sandbox), port=port))
            notify_url = notify_url or f"{receiver_url}/notify"
            merchant = Merchant(
                MCH_NO, key, APP_ID, CLIENT_IP, notify_url, "https://shop.invalid/b"
            )
            client = HttpProviderGateway(
                base_url, DIALECTS[dialect], merchant, timeout_seconds=10, attempts=1
            )
            stack.callback(client.close)
            browser = httpx.Client(timeout=10, follow_redirects=True, trust_env=False)
            stack.callback(browser.close)
            return World(
                sandbox,
                base_url,
                receiver,
                receiver_url,
                client,
                dialect,
                browser,
                iter(range(1, 10**6)),
            )

        yield open_


def api(world: World, path: str, fields: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    """A raw signed request to the sandbox's API, with the common fields of the world's dialect."""
    common = DIALECTS[world.dialect].common(world.client.merchant, int(time.time() * 1000))
    body = signing.signed({**common, **fields}, key)
    response = httpx.post(world.base_url + path, content=json.dumps(body), trust_env=False)
    assert response.status_code == 200, response.text
    return response.json()


dialects = pytest.mark.parametrize("dialect", DIALECT_NAMES)
