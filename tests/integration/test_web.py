"""The callback service over real Hypercorn on loopback, against MariaDB."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.serving import serving
from entrypoints.web import build_web_app
from flamepay import ledger
from tests.helpers.dbs import scalar
from tests.helpers.web_support import USER, notify_fields, open_orders, wire

pytestmark = pytest.mark.mysql


@pytest.fixture
def served(mysql_database):
    """(app, base URL) for a wired FlamePay and its callback app on a loopback port."""
    apps = []

    def start(**extra: str):
        app = wire(mysql_database.config, **extra)
        apps.append(app)
        context = serving(build_web_app(app))
        url = context.__enter__()
        apps.append(context)
        return app, url

    yield start
    for item in reversed(apps):
        if hasattr(item, "__exit__"):
            item.__exit__(None, None, None)
        else:
            item.close()


def post_form(url: str, fields: dict[str, str], **kw) -> httpx.Response:
    return httpx.post(f"{url}/notify", data=fields, timeout=10, **kw)


def available(config: MySqlConfig) -> int:
    return int(
        scalar(
            config,
            "SELECT COALESCE(MAX(balance), 0) FROM accounts WHERE name = %s",
            (ledger.available(USER).encode(),),
        )
    )


def test_a_verified_success_notify_credits_once(served, mysql_database) -> None:
    config = mysql_database.config
    app, url = served()
    (number,) = open_orders(app, 1)
    fields = notify_fields(app, number)
    first = post_form(url, fields)
    assert (first.status_code, first.text) == (200, "success")
    assert first.headers["content-type"].startswith("text/plain")
    again = post_form(url, fields)
    assert (again.status_code, again.text) == (200, "success")
    assert available(config) == 8500
    assert scalar(config, "SELECT COUNT(*) FROM journals WHERE kind = 'payin'") == 1
    events = MySqlDatabase(config).raw_connection()
    with events.cursor() as cursor:
        cursor.execute("SELECT outcome, fields FROM callback_events ORDER BY id")
        rows = cursor.fetchall()
    events.close()
    assert [r[0] for r in rows] == ["applied", "unchanged"]
    assert app.merchant.key not in "".join(r[1] for r in rows)


def test_query_string_and_json_bodies_are_read(served, mysql_database) -> None:
    app, url = served()
    first, second = open_orders(app, 2)
    by_query = httpx.post(f"{url}/notify?{urlencode(notify_fields(app, first))}", timeout=10)
    assert (by_query.status_code, by_query.text) == (200, "success")
    by_json = httpx.post(
        f"{url}/notify",
        content=json.dumps(notify_fields(app, second)),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert (by_json.status_code, by_json.text) == (200, "success")
    assert available(mysql_database.config) == 17000


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        ("no_sign", 401),
        ("wrong_key", 401),
        ("tampered_amount", 401),
        ("other_merchant", 401),
        ("amount_02", 400),
        ("state_letters", 400),
        ("no_order_number", 400),
        ("bad_utf8", 400),
        ("both_sources", 400),
        ("unknown_order", 404),
    ],
)
def test_refusals_change_nothing(served, mysql_database, tamper: str, status: int) -> None:
    config = mysql_database.config
    app, url = served()
    (number,) = open_orders(app, 1)
    fields = notify_fields(app, number)
    content = None
    params = ""
    if tamper == "no_sign":
        fields.pop("sign")
    elif tamper == "wrong_key":
        fields = notify_fields(app, number, key="not-the-merchant-key")
    elif tamper == "tampered_amount":
        fields["amount"] = "1"
    elif tamper == "other_merchant":
        fields = notify_fields(app, number, mchNo="SOMEONE-ELSE")
    elif tamper == "amount_02":
        fields = notify_fields(app, number, amount="010000")
    elif tamper == "state_letters":
        fields = notify_fields(app, number, state="two")
    elif tamper == "no_order_number":
        fields = notify_fields(app, number, mchOrderNo=None)
    elif tamper == "bad_utf8":
        content = b"mchOrderNo=%FF%FE&state=2"
    elif tamper == "both_sources":
        params = "?" + urlencode({"state": "2"})
    elif tamper == "unknown_order":
        fields = notify_fields(app, number, mchOrderNo="FP-NOT-OURS")
    if content is not None:
        response = httpx.post(
            f"{url}/notify",
            content=content,
            timeout=10,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    else:
        response = httpx.post(f"{url}/notify{params}", data=fields, timeout=10)
    assert (response.status_code, response.text) == (status, "fail")
    assert available(config) == 0
    assert scalar(config, "SELECT COUNT(*) FROM journals") == 0
    assert scalar(config, "SELECT COUNT(*) FROM reviews") == 0
    assert scalar(config, "SELECT state FROM orders") == 1


def test_a_mismatch_is_answered_success_and_flagged_once(served, mysql_database) -> None:
    config = mysql_database.config
    app, url = served()
    (number,) = open_orders(app, 1)
    for _ in range(3):
        response = post_form(url, notify_fields(app, number, realAmount=9000))
        assert (response.status_code, response.text) == (200, "success")
    assert available(config) == 0
    assert scalar(config, "SELECT review FROM orders") == "pending"
    assert scalar(config, "SELECT COUNT(*) FROM outbox WHERE kind = 'review_opened'") == 1


def test_size_method_and_paths(served) -> None:
    _, url = served()
    big = httpx.post(f"{url}/notify", content=b"a=" + b"x" * (64 * 1024), timeout=10)
    assert big.status_code == 413
    assert httpx.get(f"{url}/notify", timeout=10).status_code == 405
    assert httpx.put(f"{url}/notify", timeout=10).status_code == 405


def test_the_database_down_is_503_and_the_retry_then_credits(served, mysql_database) -> None:
    config = mysql_database.config
    app, url = served()
    (number,) = open_orders(app, 1)
    working = app.core.uow.database
    app.core.uow.database = MySqlDatabase(MySqlConfig(host="127.0.0.1", port=1, user="x"))
    down = post_form(url, notify_fields(app, number))
    assert (down.status_code, down.text) == (503, "fail")
    health = httpx.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["database"] == "unreachable"
    app.core.uow.database = working
    # The provider sends it again: processed normally, whatever was logged before.
    up = post_form(url, notify_fields(app, number))
    assert (up.status_code, up.text) == (200, "success")
    assert available(config) == 8500


def test_health_and_metrics(served) -> None:
    app, url = served()
    for path in ("/healthz", "/health"):
        health = httpx.get(url + path, timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "installation": "sandbox"}
    (number,) = open_orders(app, 1)
    post_form(url, notify_fields(app, number))
    metrics = httpx.get(f"{url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert 'flamepay_notify_total{result="applied"}' in metrics.text
    for header in ("X-Forwarded-For", "Forwarded", "CF-Connecting-IP"):
        hidden = httpx.get(f"{url}/metrics", headers={header: "203.0.113.9"}, timeout=10)
        assert hidden.status_code == 404


def test_allowed_ips_and_trusted_proxies(served, mysql_database) -> None:
    app, url = served(NOTIFY_ALLOWED_IPS="203.0.113.0/24", TRUSTED_PROXIES="127.0.0.1")
    first, second = open_orders(app, 2)
    refused = post_form(url, notify_fields(app, first))
    assert refused.status_code == 403
    spoofed = post_form(url, notify_fields(app, first), headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 403
    via_proxy = post_form(
        url, notify_fields(app, second), headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}
    )
    assert (via_proxy.status_code, via_proxy.text) == (200, "success")
    assert available(mysql_database.config) == 8500


def test_forwarded_for_is_ignored_from_an_untrusted_peer(served) -> None:
    app, url = served(NOTIFY_ALLOWED_IPS="203.0.113.0/24")
    (number,) = open_orders(app, 1)
    response = post_form(
        url, notify_fields(app, number), headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert response.status_code == 403


def test_verify_by_query_applies_the_providers_answer(served, mysql_database) -> None:
    app, url = served(PROVIDER_VERIFY_NOTIFY_BY_QUERY="1")
    (number,) = open_orders(app, 1)
    # The notify says paid, the provider (asked) says still paying: nothing is credited.
    response = post_form(url, notify_fields(app, number))
    assert (response.status_code, response.text) == (200, "success")
    assert available(mysql_database.config) == 0
    app.core.provider.pay(number)
    response = post_form(url, notify_fields(app, number, state=1))  # the notify only names it
    assert (response.status_code, response.text) == (200, "success")
    assert available(mysql_database.config) == 8500
