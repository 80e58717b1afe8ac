"""Drills for the notify path: real Hypercorn on loopback, MariaDB, the provider's habits.

- duplicate storm: 100 identical notifies at once, in one process and over 2 workers;
- ordering: every sequence of one to three reports over states 0-7 (584), each on a fresh
  order, ends as the design's state table says (the table is written out here again);
- hostile input: Hypothesis bodies, at least half signed with the test key, never a 5xx
  and never a change to the books;
- crash: SIGKILL while notifies sit inside their transaction, restart, resend: each paid
  order credited exactly once and ledger-check clean.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import mysql_ops
from adapters.mysql import MySqlDatabase
from adapters.provider import signing
from adapters.provider.notify import MAX_DEPTH, MAX_FIELDS, MAX_KEY_LENGTH
from entrypoints.serving import free_port, serving
from entrypoints.web import MAX_BODY, build_web_app
from flamepay.order import OrderState
from tests.helpers.dbs import scalar
from tests.helpers.web_support import (
    ROOT,
    books_snapshot,
    notify_fields,
    open_orders,
    settings_values,
    web_process,
    wire,
)

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


async def _storm(url: str, fields: dict[str, str], n: int) -> list[tuple[int, str]]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:
        responses = await asyncio.gather(
            *(client.post(f"{url}/notify", data=fields) for _ in range(n))
        )
    return [(r.status_code, r.text) for r in responses]


def wait_for(url: str, process=None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(process.stdout.read().decode(errors="replace"))
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def stop(process, sig: int = signal.SIGTERM) -> str:
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0] or b""
    return output.decode(errors="replace")


def test_duplicate_storm_in_one_process(mysql_database) -> None:
    config = mysql_database.config
    app = wire(config)
    (number,) = open_orders(app, 1)
    with serving(build_web_app(app)) as url:
        answers = _storm_sync(url, notify_fields(app, number), 100)
    app.close()
    assert Counter(answers) == {(200, "success"): 100}
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 1
    assert scalar(config, "SELECT COUNT(*) FROM outbox WHERE kind = 'order_credited'") == 1


def _storm_sync(url: str, fields: dict[str, str], n: int) -> list[tuple[int, str]]:
    return asyncio.run(_storm(url, fields, n))


def test_duplicate_storm_over_two_worker_processes(mysql_database) -> None:
    config = mysql_database.config
    app = wire(config)
    numbers = open_orders(app, 3)
    port = free_port()
    process = web_process(config, port, workers=2)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, process)
        for number in numbers:
            answers = _storm_sync(url, notify_fields(app, number), 100)
            assert Counter(answers) == {(200, "success"): 100}
        # Both workers answered (each process counts its own notifies in the shared folder).
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        served = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("flamepay_notify_total{")
        )
        assert served == 300
    finally:
        stop(process)
        app.close()
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 3
    assert scalar(config, "SELECT COUNT(*) FROM outbox WHERE kind = 'order_credited'") == 3


# --- ordering ------------------------------------------------------------------------------------
# The design's table, written out again independently of flamepay.order: the state an order
# ends in when `reported` arrives in state `current`.
def expected_state(current: int, reported: int) -> int:
    closing = {3, 4, 6}
    if current in (0, 1):
        if reported == 2:
            return 2
        if reported in closing or (current == 0 and reported == 1):
            return reported
        return current
    if current == 2:
        return {5: 5, 7: 7}.get(reported, 2)
    if current in closing:
        return 2 if reported == 2 else current
    if current == 5:
        return 5
    # current == 7
    return {2: 2, 5: 5}.get(reported, 7)


def credited_after(sequence: tuple[int, ...]) -> tuple[int, bool, bool]:
    """(final state, credited, refunded) by the independent table."""
    state, credited, refunded = 1, False, False  # an opened order is in 1 (paying)
    for reported in sequence:
        new = expected_state(state, reported)
        if new == 2 and state not in (2, 7):
            credited = True
        if new == 5 and state in (2, 7):
            refunded = True
        state = new
    return state, credited, refunded


SEQUENCES = [s for n in (1, 2, 3) for s in itertools.product(range(8), repeat=n)]


def test_every_sequence_of_up_to_three_reports(mysql_database) -> None:
    assert len(SEQUENCES) == 584
    config = mysql_database.config
    app = wire(config)
    numbers = open_orders(app, len(SEQUENCES), amount=1000)
    with serving(build_web_app(app)) as url, httpx.Client(timeout=30) as client:
        for number, sequence in zip(numbers, SEQUENCES, strict=True):
            for reported in sequence:
                # The gateway moves, then tells us: a release is confirmed by its answer to
                # the query the notify path asks (issue 15 fault 1).
                app.core.provider.set_state(number, OrderState(reported))
                response = client.post(f"{url}/notify", data=notify_fields(app, number, reported))
                assert (response.status_code, response.text) == (200, "success"), sequence
    app.close()
    connection = mysql_ops.MySqlDatabase(config).raw_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT mch_order_no, state FROM orders")
        states = {k.decode(): v for k, v in cursor.fetchall()}
        cursor.execute("SELECT jkey FROM journals")
        keys = {k[0].decode() for k in cursor.fetchall()}
    connection.close()
    wrong = []
    for number, sequence in zip(numbers, SEQUENCES, strict=True):
        state, credited, refunded = credited_after(sequence)
        actual = (states[number], f"payin:{number}" in keys, f"refund:{number}" in keys)
        if actual != (state, credited, refunded):
            wrong.append((sequence, actual, (state, credited, refunded)))
    assert wrong == []
    out = io.StringIO()
    assert mysql_ops.check_ledger(config, out) == 0, out.getvalue()


# --- hostile input -------------------------------------------------------------------------------
FIELD_NAMES = [
    "mchNo",
    "mchOrderNo",
    "payOrderNo",
    "amount",
    "realAmount",
    "currency",
    "state",
    "wayCode",
    "timestamp",
    "extParam",
    "x",
    "名前",
]
ODD_VALUES = st.sampled_from(
    [
        "02",
        "1e2",
        "100.0",
        "+1",
        "-1",
        " 1",
        "１",
        "",
        "0",
        "99999999999999999999",
        "10000",
        "2",
        "7",
        "8",
        "usd",
        "USD",
        "eur",
        "null",
        "true",
        "\x00",
        "𝟙",
        "a" * 5000,
    ]
)
VALUES = st.one_of(ODD_VALUES, st.text(max_size=30), st.integers(-5, 10**12).map(str))


@st.composite
def hostile_requests(draw, app_state):
    app, numbers = app_state
    number = draw(st.sampled_from([*numbers, "FP-unknown", ""]))
    fields = {name: draw(VALUES) for name in draw(st.sets(st.sampled_from(FIELD_NAMES)))}
    if draw(st.booleans()):
        fields.setdefault("mchOrderNo", number)
        fields.setdefault("mchNo", app.merchant.mch_no)
    signed = draw(st.booleans())
    if signed:
        fields = signing.signed(fields, app.merchant.key)
    elif draw(st.booleans()):
        fields["sign"] = draw(st.text(max_size=40))
    shape = draw(st.sampled_from(["form", "json", "query", "both", "raw"]))
    return shape, fields, signed, draw(st.binary(max_size=200))


# Issue 15 fault 8: the families that escaped the parser (503 and a traceback). Each request
# is a real, correctly signed notify of an open order (or a signed variant of it) with one
# hostile thing added, so accepting it would move money.
FAMILIES = (
    "invalid-utf8",
    "surrogate",
    "depth",
    "long-key",
    "many-keys",
    "nul",
    "duplicate-across",
)
TARGETS = [*FIELD_NAMES[:9], "sign"]  # a value in each field of a real notify, or a key


def _form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


@st.composite
def hostile_families(draw, app_state):
    """(family, body, content type, query string, expected status): 400 for every family;
    413 where the body is over MAX_BODY (say so, do not guess); never 401, since the
    parser refuses before any signature is checked."""
    app, numbers = app_state
    fields = notify_fields(app, draw(st.sampled_from(numbers)))
    family = draw(st.sampled_from(FAMILIES))
    target = draw(st.sampled_from(TARGETS))
    in_key = draw(st.booleans())
    where = draw(st.sampled_from(["body", "query"]))
    body, content_type, query = b"", MEDIA_FORM, b""

    def place(encoded: bytes) -> tuple[bytes, bytes]:
        return (encoded, b"") if where == "body" else (b"", encoded)

    if family in ("invalid-utf8", "surrogate"):
        if family == "surrogate" and draw(st.booleans()):  # JSON: a \uD800-\uDFFF escape
            escape = "\\u" + format(draw(st.integers(0xD800, 0xDFFF)), "04x")
            text = json.dumps(fields)
            pair = f'"{escape}": "1"' if in_key else f'"{target}": "a{escape}"'
            text = text.replace(f'"{target}": ', '"was": ', 1) if not in_key else text
            body, content_type = (text[:-1] + ", " + pair + "}").encode(), MEDIA_JSON
        else:
            bad = draw(
                st.sampled_from(
                    [b"%ED%A0%80", b"%ED%BF%BF", b"%FF", b"%C3%28", b"%E2%82", b"%F8%88%80%80%80"]
                    + ([b"\xed\xa0\x80", b"\xff", b"\xc3\x28"] if where == "body" else [])
                )
            )
            extra = bad + b"=1" if in_key else target.encode() + b"=a" + bad
            rest = {k: v for k, v in fields.items() if in_key or k != target}
            body, query = place(_form(rest) + b"&" + extra)
    elif family == "depth":
        opener = draw(st.sampled_from(["[", "{"]))
        levels = draw(st.integers(MAX_DEPTH, 10_000 if opener == "{" else 20_000))
        head, inner, tail = ("[", "1", "]") if opener == "[" else ('{"a": ', '"x"', "}")
        nested = head * levels + inner + tail * levels
        text = json.dumps({k: v for k, v in fields.items() if k != target})
        body, content_type = (text[:-1] + f', "{target}": {nested}}}').encode(), MEDIA_JSON
    elif family == "long-key":
        high = 1200 if where == "query" else 70_000  # a query rides in the request line
        name = draw(st.sampled_from("kK名x")) * draw(st.integers(MAX_KEY_LENGTH + 1, high))
        signed = signing.signed({**fields, name: "1"}, app.merchant.key)
        if draw(st.booleans()) and where == "body":
            body, content_type = json.dumps(signed, ensure_ascii=False).encode(), MEDIA_JSON
        else:
            body, query = place(_form(signed))
    elif family == "many-keys":
        # A query rides in the request line (Hypercorn takes 16 KiB of it): fewer keys there.
        count = draw(st.integers(MAX_FIELDS + 1 - len(fields), 1200 if where == "query" else 8000))
        padding = {f"p{i}": "1" for i in range(count)}
        padded = signing.signed({**fields, **padding}, app.merchant.key)
        body, query = place(_form(padded))
    elif family == "nul":
        if in_key:
            changed = {**fields, draw(st.sampled_from(["a\x00", "\x00", "sign\x00"])): "1"}
            changed = signing.signed(changed, app.merchant.key)
        else:
            value = draw(st.sampled_from(["\x00", "a\x00b", fields[target] + "\x00"]))
            # Signed over the NUL, except in `sign` itself (signing would overwrite it).
            changed = signing.signed({**fields, target: value}, app.merchant.key)
            changed[target] = value
        style = draw(st.sampled_from(["form", "json", "raw"]))
        if style == "json":
            body, content_type = json.dumps(changed).encode(), MEDIA_JSON
        elif style == "raw" and where == "body":  # the NUL byte itself, not %00
            body = _form(changed).replace(b"%00", b"\x00")
        else:
            body, query = place(_form(changed))
    else:  # duplicate-across: the body and the query string both carry fields
        name = draw(st.sampled_from(sorted(fields)))
        query = _form({name: fields[name]})
        if draw(st.booleans()):
            body, content_type = json.dumps(fields).encode(), MEDIA_JSON
        else:
            body = _form(fields)
    expected = 413 if len(body) > MAX_BODY else 400
    return family, body, content_type, query, expected


MEDIA_FORM = "application/x-www-form-urlencoded"
MEDIA_JSON = "application/json"


def test_hostile_bodies_never_5xx_and_never_move_money(mysql_database, caplog) -> None:
    """The 2,000 hostile bodies, then (issue 15 fault 8) the families that used to escape the
    parser as 503 with an ERROR traceback: invalid UTF-8 and lone surrogates in each field
    and in keys, nesting depth, very long keys, many keys, NUL bytes, fields in both the
    body and the query string. Each family is answered exactly 400 (413 when over 64 KiB),
    the books do not move, and no ERROR record or traceback is logged."""
    caplog.set_level(logging.INFO)
    config = mysql_database.config
    app = wire(config)
    numbers = open_orders(app, 5)
    before = books_snapshot(config)
    seen = Counter()
    accepted: list[dict[str, str]] = []
    with serving(build_web_app(app)) as url, httpx.Client(timeout=30) as client:

        @settings(
            max_examples=2000,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(hostile_requests((app, numbers)))
        def check(request) -> None:
            shape, fields, signed, raw = request
            seen["signed" if signed else "unsigned"] += 1
            if shape == "form":
                response = client.post(f"{url}/notify", data=fields)
            elif shape == "json":
                response = client.post(
                    f"{url}/notify",
                    content=json.dumps(fields),
                    headers={"content-type": "application/json"},
                )
            elif shape == "query":
                response = client.post(f"{url}/notify?{urlencode(fields)}")
            elif shape == "both":
                response = client.post(f"{url}/notify?{urlencode(fields)}", data=fields)
            else:
                response = client.post(
                    f"{url}/notify",
                    content=raw,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            assert response.status_code < 500, (request, response.text)
            assert response.text in ("success", "fail")
            if response.text == "success":
                assert signed, request  # only the gateway's own signature is ever applied
                accepted.append(fields)

        check()

        families = Counter()

        @settings(
            max_examples=700,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(hostile_families((app, numbers)))
        def check_family(request) -> None:
            family, body, content_type, query, expected = request
            families[family, expected] += 1
            target = f"{url}/notify" + (f"?{query.decode('latin-1')}" if query else "")
            response = client.post(target, content=body, headers={"content-type": content_type})
            assert (response.status_code, response.text) == (expected, "fail"), (
                family,
                body[:120],
                query[:120],
            )

        check_family()
    app.close()
    assert seen["signed"] >= seen["unsigned"] * 0.8  # about half reach the parser and core
    assert seen["signed"] + seen["unsigned"] >= 2000
    after = books_snapshot(config)
    if accepted:
        # Now and then a random body is a correctly signed report of a real order (our key
        # signed it): that is the gateway's word, applied by the table (a mismatch flags the
        # order for review). Then the books must still prove themselves, and no payout moved.
        assert after["payouts"] == before["payouts"]
        out = io.StringIO()
        assert mysql_ops.check_ledger(config, out) == 0, out.getvalue()
    else:
        assert after == before
    for family in FAMILIES:  # every family really was sent, and answered 400
        assert families[family, 400] >= 20, (family, families)
    assert sum(families.values()) >= 700
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors[:5]]
    assert "Traceback" not in caplog.text


# --- crash ---------------------------------------------------------------------------------------
def open_transactions(config) -> int:
    """Notifies inside their transaction: pay-in journals written but not yet committed,
    seen by a dirty read beside a committed one."""
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            counts = []
            for level in ("READ UNCOMMITTED", "READ COMMITTED"):
                cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
                cursor.execute("SELECT COUNT(*) FROM journals WHERE kind = 'payin'")
                counts.append(int(cursor.fetchone()[0]))
                connection.commit()
            return counts[0] - counts[1]
    finally:
        connection.close()


async def _send_all(url: str, bodies: list[dict[str, str]]) -> list[object]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(client.post(f"{url}/notify", data=b) for b in bodies), return_exceptions=True
        )


def test_sigkill_inside_transactions_then_redelivery_credits_once(mysql_database) -> None:
    config = mysql_database.config
    app = wire(config)
    warm_up, *numbers = open_orders(app, 13)
    bodies = [notify_fields(app, n) for n in numbers]
    # A steady state: the user's and the platform's accounts exist (a first credit made them),
    # so the drill's notifies queue on their locks instead of racing to create them.
    with serving(build_web_app(app)) as first:
        assert httpx.post(f"{first}/notify", data=notify_fields(app, warm_up)).text == "success"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = web_process(config, port, FLAMEPAY_TEST_COMMIT_DELAY_MS="4000")
    try:
        wait_for(url, process)
        # The provider's deliveries, on a thread of their own so they progress while we watch.
        replies: list[object] = []

        def deliver() -> None:
            try:
                replies.extend(asyncio.run(_send_all(url, bodies)))
            except BaseException as error:
                replies.append(error)
                raise

        sender = threading.Thread(target=deliver)
        sender.start()
        deadline = time.monotonic() + 20
        inside = 0
        while time.monotonic() < deadline and inside < 8:
            time.sleep(0.05)
            inside = open_transactions(config)
        assert inside >= 8, f"only {inside} notifies were inside their transaction"
        process.kill()  # SIGKILL: no cleanup, no goodbye
        sender.join(60)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    unanswered = [r for r in replies if isinstance(r, Exception)]
    assert unanswered, "the kill should have left some notifies without a reply"
    # The server rolled the dead connections back: nothing half-done was kept.
    deadline = time.monotonic() + 30
    while open_transactions(config) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 1 + sum(
        1 for r in replies if not isinstance(r, Exception) and r.text == "success"
    )
    # The provider sends every notify again, as it does for any failed delivery.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = web_process(config, port)
    try:
        wait_for(url, process)
        again = asyncio.run(_send_all(url, bodies))
    finally:
        stop(process)
        app.close()
    assert [(r.status_code, r.text) for r in again] == [(200, "success")] * 12
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 13
    assert scalar(config, "SELECT COUNT(*) FROM outbox WHERE kind = 'order_credited'") == 13
    out = io.StringIO()
    assert mysql_ops.check_ledger(config, out) == 0, out.getvalue()


def test_four_web_workers_and_two_job_runners_on_one_database(mysql_database) -> None:
    """Several workers under load: no errors, no double credit, ledger-check clean."""
    config = mysql_database.config
    app = wire(config)
    numbers = open_orders(app, 300)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = web_process(config, port, workers=4)
    runners = [
        subprocess.Popen(
            [sys.executable, "-m", "entrypoints", "jobs"],
            cwd=ROOT,
            env={
                **os.environ,
                **settings_values(config, RECONCILE_INTERVAL_SECONDS="5"),
                "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    try:
        wait_for(url, web)
        bodies = [notify_fields(app, n) for n in numbers]
        answers = asyncio.run(_send_concurrently(url, bodies, 32))
        assert Counter(answers) == {(200, "success"): 300}
        again = asyncio.run(_send_concurrently(url, bodies[:100], 32))  # duplicates
        assert Counter(again) == {(200, "success"): 100}
    finally:
        stop(web)
        outputs = [stop(runner) for runner in runners]
        app.close()
    assert all("Traceback" not in output for output in outputs), outputs
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 300
    out = io.StringIO()
    assert mysql_ops.check_ledger(config, out) == 0, out.getvalue()


async def _send_concurrently(url: str, bodies: list[dict[str, str]], concurrency: int):
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(body):
            async with semaphore:
                response = await client.post(f"{url}/notify", data=body)
                return response.status_code, response.text

        return await asyncio.gather(*(one(b) for b in bodies))
