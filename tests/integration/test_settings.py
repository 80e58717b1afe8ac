"""Settings: every rule, one test per message; the production refusals; ADMIN_IDS forms.

The design's "Sandbox and production" and "Money and fees" sections are the specification:
a bad setting stops start-up with one line per problem naming the setting, and secrets never
appear in a repr or a message.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from entrypoints import settings as settings_module
from entrypoints.configuration import installation_kind
from entrypoints.settings import (
    Settings,
    SettingsError,
    gather,
    load_settings,
    read_dotenv,
)
from flamepay.payout import Network
from tests.helpers import ROOT
from tests.helpers.settings_values import BASE, GOOD_TOKEN, LIVE

PRODUCTION = {**LIVE, "APP_ENV": "production", "SQLITE_PATH": "var/production.sqlite3"}

ADMIN_LINE = (
    "ADMIN_IDS: expected the Telegram user ids of the admins, positive integers separated by "
    "commas (for example 123456789 or 123456789,987654321); put them in .env"
)
FEE_LINE = (
    "GLOBAL_FEE_PERCENT: expected a percentage from 0 to 100 with at most two decimals "
    "(for example 15 or 12.5)"
)
BASE_URL_EMPTY_LINE = (
    "PROVIDER_BASE_URL: expected the gateway's https URL, or exactly 'sandbox' for the "
    "built-in sandbox gateway"
)
KEY_LINE = (
    "PROVIDER_KEY: a live gateway needs the merchant key from the gateway, at least 16 characters"
)
PREVIOUS_KEY_LINE = (
    "PROVIDER_KEY_PREVIOUS: a live gateway needs the previous merchant key in full, at least 16 "
    "characters (or leave it empty)"
)
SANDBOX_REFUSED_LINE = "PROVIDER_BASE_URL: APP_ENV=production refuses the sandbox gateway"
IMPLICIT_SQLITE_LINE = "SQLITE_PATH: APP_ENV=production needs MYSQL_HOST or an explicit SQLITE_PATH"


def live_http_line(name: str) -> str:
    return (
        f"{name}: a live installation needs https:// here (plain http:// is allowed only on a "
        "loopback address, for local testing)"
    )


def production_http_line(name: str) -> str:
    return f"{name}: APP_ENV=production refuses http:// URLs; use https://"


def whole_number_line(name: str, low: int, high: int) -> str:
    return f"{name}: expected a whole number from {low} to {high}"


def money_line(name: str, zero_ok: bool) -> str:
    return f"{name}: expected an amount like 10 or 10.50" + (" (or 0)" if zero_ok else "")


def merged(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    """`base` with `overrides` applied; None removes the setting."""
    values = dict(base)
    for name, value in overrides.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def problems_of(values: Mapping[str, str], need_bot: bool = True) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(values, need_bot=need_bot)
    return caught.value.problems


# --- one test per message ------------------------------------------------------------------------
MESSAGE_CASES = [
    # (base, overrides, the one line expected)
    pytest.param(
        BASE, {"APP_ENV": "staging"}, "APP_ENV: expected development or production", id="app-env"
    ),
    pytest.param(
        BASE,
        {"BOT_TOKEN": None},
        "BOT_TOKEN: expected the bot token from @BotFather (put it in .env)",
        id="bot-token-missing",
    ),
    pytest.param(
        BASE,
        {"BOT_TOKEN": "not-a-token"},
        "BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives",
        id="bot-token-form",
    ),
    pytest.param(BASE, {"ADMIN_IDS": "1,x"}, ADMIN_LINE, id="admin-ids"),
    pytest.param(
        BASE,
        {"TELEGRAM_API_URL": ""},
        "TELEGRAM_API_URL: expected an https:// URL",
        id="telegram-api-url-empty",
    ),
    pytest.param(
        BASE,
        {"TELEGRAM_API_URL": "api.telegram.org/bot"},
        "TELEGRAM_API_URL: expected an http:// or https:// URL with a host, got "
        "'api.telegram.org/bot'",
        id="telegram-api-url-malformed",
    ),
    pytest.param(
        LIVE,
        {"NOTIFY_URL": None},
        "NOTIFY_URL: expected an https:// URL",
        id="notify-url-required-when-live",
    ),
    pytest.param(
        BASE,
        {"NOTIFY_URL": "ftp://bot.example.com/notify"},
        "NOTIFY_URL: expected an http:// or https:// URL with a host, got "
        "'ftp://bot.example.com/notify'",
        id="notify-url-malformed",
    ),
    pytest.param(
        BASE,
        {"NOTIFY_URL": "https://bot.example.com/notify?token=1"},
        "NOTIFY_URL: must not carry query parameters (newer Jeepay signs them in)",
        id="notify-url-query",
    ),
    pytest.param(
        BASE,
        {"RETURN_URL": "https://"},
        "RETURN_URL: expected an http:// or https:// URL with a host, got 'https://'",
        id="return-url-malformed",
    ),
    pytest.param(
        BASE,
        {"MYSQL_HOST": "db.example.com", "MYSQL_DATABASE": "flame-pay"},
        "MYSQL_DATABASE: expected letters, digits and '_' (at most 64)",
        id="mysql-database",
    ),
    pytest.param(
        BASE,
        {"MYSQL_HOST": "db.example.com", "MYSQL_USER": " "},
        "MYSQL_USER: expected the MySQL user name",
        id="mysql-user",
    ),
    pytest.param(
        BASE,
        {"MYSQL_POOL_SIZE": "0"},
        whole_number_line("MYSQL_POOL_SIZE", 1, 100),
        id="mysql-pool-size",
    ),
    pytest.param(
        BASE,
        {"MYSQL_HOST": "db.example.com", "MYSQL_PORT": "65536"},
        whole_number_line("MYSQL_PORT", 1, 65535),
        id="mysql-port",
    ),
    pytest.param(
        BASE, {"PROVIDER_BASE_URL": ""}, BASE_URL_EMPTY_LINE, id="provider-base-url-empty"
    ),
    pytest.param(
        BASE, {"PROVIDER_BASE_URL": None}, BASE_URL_EMPTY_LINE, id="provider-base-url-missing"
    ),
    pytest.param(
        BASE,
        {"PROVIDER_BASE_URL": "Sandbox"},
        "PROVIDER_BASE_URL: expected the gateway's https:// URL, or exactly 'sandbox' "
        "(got 'Sandbox')",
        id="provider-base-url-malformed",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_DIALECT": "alipay"},
        "PROVIDER_DIALECT: expected ggusonepay or jeepay",
        id="provider-dialect",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_CLIENT_IP": "my.server"},
        "PROVIDER_CLIENT_IP: expected an IP address (your server's)",
        id="provider-client-ip",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_TIMEOUT_SECONDS": "121"},
        whole_number_line("PROVIDER_TIMEOUT_SECONDS", 1, 120),
        id="provider-timeout",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_REQUIRE_RESPONSE_SIGN": "maybe"},
        "PROVIDER_REQUIRE_RESPONSE_SIGN: expected 1 or 0",
        id="require-response-sign",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_VERIFY_NOTIFY_BY_QUERY": "2"},
        "PROVIDER_VERIFY_NOTIFY_BY_QUERY: expected 1 or 0",
        id="verify-notify-by-query",
    ),
    pytest.param(BASE, {"GLOBAL_FEE_PERCENT": "abc"}, FEE_LINE, id="fee-percent"),
    pytest.param(
        BASE,
        {"DEFAULT_CURRENCY": "eur"},
        "DEFAULT_CURRENCY: EUR is not supported; this version pays out USDT 1:1 against "
        "USD balances and converts nothing (set USD)",
        id="currency",
    ),
    pytest.param(BASE, {"PAYOUT_MIN": "0"}, money_line("PAYOUT_MIN", False), id="payout-min"),
    pytest.param(BASE, {"PAYOUT_MAX": "-5"}, money_line("PAYOUT_MAX", True), id="payout-max"),
    pytest.param(
        BASE,
        {"PAYOUT_MIN": "50", "PAYOUT_MAX": "49.99"},
        "PAYOUT_MAX: expected 0 (no maximum) or an amount not below PAYOUT_MIN",
        id="payout-max-below-min",
    ),
    pytest.param(
        BASE,
        {"PAYOUT_FEE_TRC20": "1.234"},
        money_line("PAYOUT_FEE_TRC20", True),
        id="payout-fee-trc20",
    ),
    pytest.param(
        BASE,
        {"PAYOUT_FEE_BEP20": "1e3"},
        money_line("PAYOUT_FEE_BEP20", True),
        id="payout-fee-bep20",
    ),
    pytest.param(BASE, {"PACKAGE_MAX": "0"}, money_line("PACKAGE_MAX", False), id="package-max"),
    pytest.param(
        BASE,
        {"ORDER_EXPIRE_MINUTES": "0"},
        whole_number_line("ORDER_EXPIRE_MINUTES", 1, 1440),
        id="order-expire-minutes",
    ),
    pytest.param(
        BASE,
        {"MAX_OPEN_ORDERS": "101"},
        whole_number_line("MAX_OPEN_ORDERS", 1, 100),
        id="max-open-orders",
    ),
    pytest.param(LIVE, {"PROVIDER_KEY": "k" * 15}, KEY_LINE, id="live-key-short"),
    pytest.param(
        LIVE, {"PROVIDER_KEY_PREVIOUS": "k" * 15}, PREVIOUS_KEY_LINE, id="live-previous-key-short"
    ),
    pytest.param(
        LIVE,
        {"PROVIDER_KEY_PREVIOUS": "p" * 20, "PROVIDER_KEY_PREVIOUS_UNTIL": "2026-2-1"},
        "PROVIDER_KEY_PREVIOUS_UNTIL: expected a date as YYYY-MM-DD, the last day (UTC) "
        "the previous key is accepted",
        id="previous-key-until-form",
    ),
    pytest.param(
        BASE,
        {"PROVIDER_KEY_PREVIOUS_UNTIL": "2026-02-01"},
        "PROVIDER_KEY_PREVIOUS_UNTIL: set it only together with PROVIDER_KEY_PREVIOUS "
        "(the key it ends)",
        id="previous-key-until-without-key",
    ),
    pytest.param(
        LIVE,
        {"PROVIDER_MCH_NO": None},
        "PROVIDER_MCH_NO: a live gateway needs your merchant number",
        id="live-mch-no",
    ),
    pytest.param(
        LIVE,
        {"PROVIDER_BASE_URL": "http://pay.example.com"},
        live_http_line("PROVIDER_BASE_URL"),
        id="live-http-provider",
    ),
    pytest.param(
        LIVE,
        {"NOTIFY_URL": "http://bot.example.com/notify"},
        live_http_line("NOTIFY_URL"),
        id="live-http-notify",
    ),
    pytest.param(
        PRODUCTION, {"PROVIDER_BASE_URL": "sandbox"}, SANDBOX_REFUSED_LINE, id="production-sandbox"
    ),
    pytest.param(
        PRODUCTION, {"SQLITE_PATH": None}, IMPLICIT_SQLITE_LINE, id="production-implicit-sqlite"
    ),
    pytest.param(
        PRODUCTION,
        {"PROVIDER_BASE_URL": "http://127.0.0.1:9000"},
        production_http_line("PROVIDER_BASE_URL"),
        id="production-http-provider",
    ),
    pytest.param(
        PRODUCTION,
        {"NOTIFY_URL": "http://localhost:8000/notify"},
        production_http_line("NOTIFY_URL"),
        id="production-http-notify",
    ),
    pytest.param(
        PRODUCTION,
        {"RETURN_URL": "http://[::1]/back"},
        production_http_line("RETURN_URL"),
        id="production-http-return",
    ),
    pytest.param(
        PRODUCTION,
        {"TELEGRAM_API_URL": "http://127.0.0.1:8081/bot"},
        production_http_line("TELEGRAM_API_URL"),
        id="production-http-telegram",
    ),
    pytest.param(
        BASE,
        {"LOG_LEVEL": "verbose"},
        "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        id="log-level",
    ),
    pytest.param(
        BASE,
        {"SANDBOX_HOST": "bad host!"},
        "SANDBOX_HOST: expected a host name or IP address",
        id="sandbox-host-form",
    ),
    pytest.param(
        BASE,
        {"SANDBOX_HOST": "0.0.0.0"},
        "SANDBOX_HOST: the sandbox binds to a loopback address only (127.0.0.1)",
        id="sandbox-host-not-loopback",
    ),
    pytest.param(
        BASE,
        {"WEBHOOK_HOST": "host/with/slash"},
        "WEBHOOK_HOST: expected a host name or IP address",
        id="webhook-host",
    ),
    pytest.param(
        BASE,
        {"WEBHOOK_PORT": "http"},
        whole_number_line("WEBHOOK_PORT", 1, 65535),
        id="webhook-port",
    ),
    pytest.param(
        BASE,
        {"NOTIFY_ALLOWED_IPS": "1.2.3.4,1.2.3"},
        "NOTIFY_ALLOWED_IPS: expected IP addresses or networks separated by commas, got '1.2.3'",
        id="notify-allowed-ips",
    ),
    pytest.param(
        BASE,
        {"TRUSTED_PROXIES": "10.0.0.0/33"},
        "TRUSTED_PROXIES: expected IP addresses or networks separated by commas, got '10.0.0.0/33'",
        id="trusted-proxies",
    ),
    pytest.param(
        BASE,
        {"RECONCILE_INTERVAL_SECONDS": "4"},
        whole_number_line("RECONCILE_INTERVAL_SECONDS", 5, 86400),
        id="reconcile",
    ),
    pytest.param(
        BASE,
        {"ALERT_INTERVAL_MINUTES": "1441"},
        whole_number_line("ALERT_INTERVAL_MINUTES", 1, 1440),
        id="alert-interval",
    ),
    pytest.param(
        BASE, {"SANDBOX_PORT": "0"}, whole_number_line("SANDBOX_PORT", 1, 65535), id="sandbox-port"
    ),
    pytest.param(
        BASE,
        {"SANDBOX_TIME_SCALE": "100001"},
        whole_number_line("SANDBOX_TIME_SCALE", 1, 100000),
        id="sandbox-time-scale",
    ),
]


@pytest.mark.parametrize("base", [BASE, LIVE, PRODUCTION], ids=["sandbox", "live", "production"])
def test_the_baselines_have_no_problem(base: dict[str, str]) -> None:
    settings = load_settings(base)
    assert isinstance(settings, Settings)
    assert settings.admin_ids == frozenset({123456789})
    assert settings.installation_kind == ("sandbox" if base is BASE else "live")
    assert settings.production is (base is PRODUCTION)


@pytest.mark.parametrize(("base", "overrides", "line"), MESSAGE_CASES)
def test_each_rule_gives_its_own_line_naming_the_setting(
    base: dict[str, str], overrides: dict[str, str | None], line: str
) -> None:
    load_settings(base)  # the baseline itself is clean: the line comes from the override
    problems = problems_of(merged(base, overrides))
    assert problems == [line]
    name, sep, _ = line.partition(": ")
    assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
    assert name in overrides  # it names the very setting that was changed


def _alternatives(node: ast.expr) -> list[str]:
    """Regexes for every line a message expression can produce (placeholders: `.+`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.escape(node.value)]
    if isinstance(node, ast.FormattedValue):
        return [".+"]
    if isinstance(node, ast.JoinedStr):
        parts = [_alternatives(value) for value in node.values]
        return ["".join(choice) for choice in itertools.product(*parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a in _alternatives(node.left) for b in _alternatives(node.right)]
    if isinstance(node, ast.IfExp):
        return _alternatives(node.body) + _alternatives(node.orelse)
    raise AssertionError(f"a message form this test does not understand: {ast.unparse(node)}")


def _module_messages() -> set[str]:
    tree = ast.parse(inspect.getsource(settings_module))
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        is_fail = node.func.attr == "fail"
        is_append = node.func.attr == "append" and ast.unparse(node.func.value) == "self.problems"
        if (is_fail or is_append) and node.args:
            if isinstance(node.args[0], ast.Name):
                continue  # Reader.fail passing its argument on
            found.update(_alternatives(node.args[0]))
    return found


def test_every_message_in_the_module_has_a_case() -> None:
    patterns = _module_messages()
    assert len(patterns) >= 30  # the parse really found the module's messages
    lines = [case.values[2] for case in MESSAGE_CASES]
    uncovered = [p for p in patterns if not any(re.fullmatch(p, line) for line in lines)]
    assert uncovered == []
    strays = [line for line in lines if not any(re.fullmatch(p, line) for p in patterns)]
    assert strays == []


def test_several_problems_give_one_line_each() -> None:
    values = merged(
        BASE,
        {
            "BOT_TOKEN": "nope",
            "ADMIN_IDS": "-1",
            "WEBHOOK_PORT": "99999",
            "LOG_LEVEL": "loud",
            "GLOBAL_FEE_PERCENT": "101",
            "PAYOUT_MIN": "ten",
        },
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(values)
    problems = caught.value.problems
    assert sorted(problems) == sorted(
        [
            "BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives",
            ADMIN_LINE,
            whole_number_line("WEBHOOK_PORT", 1, 65535),
            "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            FEE_LINE,
            money_line("PAYOUT_MIN", False),
        ]
    )
    assert all("\n" not in line for line in problems)
    assert str(caught.value) == "\n".join(problems)


# --- ADMIN_IDS --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ("123456789", {123456789}),  # the seed's own example form
        ("1,2", {1, 2}),
        ("123456789,987654321", {123456789, 987654321}),
        (" 1 , 2 ", {1, 2}),
    ],
)
def test_admin_ids_accepted(raw: str, ids: set[int]) -> None:
    assert load_settings({**BASE, "ADMIN_IDS": raw}).admin_ids == frozenset(ids)


@pytest.mark.parametrize("raw", ["1,x", "-1", "", "   ", None, "0", "1,,2", "1,2,", "1 2", "1.0"])
def test_admin_ids_refused(raw: str | None) -> None:
    assert problems_of(merged(BASE, {"ADMIN_IDS": raw})) == [ADMIN_LINE]


@pytest.mark.parametrize("base", [BASE, LIVE, PRODUCTION], ids=["sandbox", "live", "production"])
def test_empty_admin_ids_refused_in_every_installation(base: dict[str, str]) -> None:
    assert problems_of({**base, "ADMIN_IDS": ""}) == [ADMIN_LINE]


# --- sandbox and production ------------------------------------------------------------------
def test_sandbox_is_chosen_by_the_exact_name() -> None:
    settings = load_settings(BASE)
    assert settings.provider.is_sandbox
    assert settings.installation_kind == "sandbox"
    assert installation_kind("sandbox") == "sandbox"
    assert installation_kind("Sandbox") == "live"


def test_surrounding_spaces_around_sandbox_are_trimmed_like_any_value() -> None:
    settings = load_settings({**BASE, "PROVIDER_BASE_URL": " sandbox "})
    assert settings.provider.base_url == "sandbox"
    assert settings.installation_kind == "sandbox"


@pytest.mark.parametrize("raw", ["Sandbox", "SANDBOX", "sandbox2", "sand box"])
def test_sandbox_in_another_spelling_is_refused(raw: str) -> None:
    assert problems_of({**BASE, "PROVIDER_BASE_URL": raw}) == [
        "PROVIDER_BASE_URL: expected the gateway's https:// URL, or exactly 'sandbox' "
        f"(got {raw!r})"
    ]


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_empty_provider_base_url_names_the_setting(raw: str | None) -> None:
    for need_bot in (True, False):
        assert problems_of(merged(BASE, {"PROVIDER_BASE_URL": raw}), need_bot) == [
            BASE_URL_EMPTY_LINE
        ]


@pytest.mark.parametrize("app_env", [None, "development", "production"])
def test_live_refuses_a_short_key_whatever_app_env_says(app_env: str | None) -> None:
    values = merged(PRODUCTION, {"APP_ENV": app_env, "PROVIDER_KEY": "short-key-15chr"})
    assert len(values["PROVIDER_KEY"]) == 15
    assert problems_of(values) == [KEY_LINE]
    values["PROVIDER_KEY"] = "exactly-16-chars"
    assert load_settings(values).provider.key == "exactly-16-chars"


@pytest.mark.parametrize("app_env", [None, "development", "production"])
@pytest.mark.parametrize("name", ["PROVIDER_BASE_URL", "NOTIFY_URL"])
@pytest.mark.parametrize(
    "host", ["pay.example.com", "10.0.0.1", "0.0.0.0", "127.0.0.1.example.com", "localhost.example"]
)
def test_live_refuses_plain_http_off_loopback_whatever_app_env_says(
    app_env: str | None, name: str, host: str
) -> None:
    problems = problems_of(merged(PRODUCTION, {"APP_ENV": app_env, name: f"http://{host}/x"}))
    assert live_http_line(name) in problems
    expected = {live_http_line(name)}
    if app_env == "production":
        expected.add(production_http_line(name))
    assert set(problems) == expected


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:9000", "localhost", "localhost:9000", "[::1]", "[::1]:9000"]
)
def test_live_allows_loopback_http_in_development(host: str) -> None:
    values = {**LIVE, "PROVIDER_BASE_URL": f"http://{host}", "NOTIFY_URL": f"http://{host}/n"}
    settings = load_settings(values)
    assert settings.installation_kind == "live"
    assert settings.provider.base_url == f"http://{host}"
    assert settings.notify_url == f"http://{host}/n"


@pytest.mark.parametrize(
    "name", ["PROVIDER_BASE_URL", "NOTIFY_URL", "RETURN_URL", "TELEGRAM_API_URL"]
)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_production_refuses_http_even_on_loopback(name: str, host: str) -> None:
    assert problems_of({**PRODUCTION, name: f"http://{host}:8080/x"}) == [
        production_http_line(name)
    ]
    assert load_settings({**PRODUCTION, name: f"https://{host}:8080/x"})


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("TELEGRAM_API_URL", "HTTP://api.telegram.org/bot"),
        ("RETURN_URL", "Http://shop.example.com/back"),
        ("NOTIFY_URL", "HTTP://127.0.0.1:8000/notify"),
        ("PROVIDER_BASE_URL", "HTTP://localhost:9000"),
    ],
)
def test_production_refuses_http_in_upper_case(name: str, url: str) -> None:
    assert problems_of({**PRODUCTION, name: url}) == [production_http_line(name)]


def test_production_refuses_the_sandbox() -> None:
    values = {**BASE, "APP_ENV": "production", "SQLITE_PATH": "var/p.sqlite3"}
    assert problems_of(values) == [SANDBOX_REFUSED_LINE]
    assert load_settings({**values, "APP_ENV": "development"}).provider.is_sandbox


@pytest.mark.parametrize("sqlite_path", [None, "", "   "])
def test_production_refuses_implicit_sqlite(sqlite_path: str | None) -> None:
    assert problems_of(merged(PRODUCTION, {"SQLITE_PATH": sqlite_path})) == [IMPLICIT_SQLITE_LINE]


def test_production_accepts_mysql_or_an_explicit_sqlite_path() -> None:
    explicit = load_settings(PRODUCTION).storage
    assert explicit.sqlite_path == Path("var/production.sqlite3")
    assert explicit.sqlite_path_explicit
    assert explicit.mysql is None
    mysql = load_settings(merged(PRODUCTION, {"SQLITE_PATH": None, "MYSQL_HOST": "db.internal"}))
    assert mysql.storage.mysql is not None
    assert mysql.storage.mysql.host == "db.internal"
    assert mysql.storage.mysql.port == 3306
    assert mysql.storage.mysql.database == "flamepay"
    assert mysql.storage.sqlite_path is None


def test_development_defaults_to_implicit_sqlite() -> None:
    storage = load_settings(BASE).storage
    assert storage.mysql is None
    assert storage.sqlite_path == Path("var/flamepay.sqlite3")
    assert not storage.sqlite_path_explicit


@pytest.mark.parametrize("raw", ["USD", "usd", "Usd", " usd ", ""])
def test_usd_is_accepted_without_case(raw: str) -> None:
    assert load_settings({**BASE, "DEFAULT_CURRENCY": raw}).policy.currency == "USD"


@pytest.mark.parametrize(("raw", "shown"), [("EUR", "EUR"), ("rub", "RUB"), ("USDT", "USDT")])
def test_another_currency_stops_with_a_line_naming_it(raw: str, shown: str) -> None:
    assert problems_of({**BASE, "DEFAULT_CURRENCY": raw}) == [
        f"DEFAULT_CURRENCY: {shown} is not supported; this version pays out USDT 1:1 against "
        "USD balances and converts nothing (set USD)"
    ]


@pytest.mark.parametrize("raw", ["Production", "prod", "PRODUCTION", "dev"])
def test_app_env_is_one_of_two_words(raw: str) -> None:
    assert problems_of({**BASE, "APP_ENV": raw}) == ["APP_ENV: expected development or production"]


# --- money and fees ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "bp"),
    [("15", 1500), ("12.5", 1250), ("0", 0), ("100", 10000), ("100.00", 10000), ("0.01", 1)],
)
def test_fee_percent_kept_as_basis_points(raw: str, bp: int) -> None:
    fee_bp = load_settings({**BASE, "GLOBAL_FEE_PERCENT": raw}).policy.fee_bp
    assert fee_bp == bp
    assert type(fee_bp) is int


def test_fee_percent_defaults_to_15() -> None:
    assert load_settings(BASE).policy.fee_bp == 1500


@pytest.mark.parametrize("raw", ["100.01", "15.123", "-1", "abc", "101", "1e1", "15%", "١٥"])
def test_fee_percent_refused(raw: str) -> None:
    assert problems_of({**BASE, "GLOBAL_FEE_PERCENT": raw}) == [FEE_LINE]


def _money_value(settings: Settings, name: str) -> int:
    policy = settings.policy
    return {
        "PAYOUT_MIN": policy.payout_min,
        "PAYOUT_MAX": policy.payout_max,
        "PAYOUT_FEE_TRC20": policy.payout_fees[Network.TRC20],
        "PAYOUT_FEE_BEP20": policy.payout_fees[Network.BEP20],
        "PACKAGE_MAX": policy.package_max,
    }[name]


@pytest.mark.parametrize(
    ("name", "cents"),
    [
        ("PAYOUT_MIN", 10_00),
        ("PAYOUT_MAX", 1000_00),
        ("PAYOUT_FEE_TRC20", 0),
        ("PAYOUT_FEE_BEP20", 0),
        ("PACKAGE_MAX", 10_000_00),
    ],
)
def test_money_defaults_are_integer_cents(name: str, cents: int) -> None:
    value = _money_value(load_settings(BASE), name)
    assert value == cents
    assert type(value) is int


@pytest.mark.parametrize(
    ("name", "raw", "cents"),
    [
        ("PAYOUT_MIN", "5", 500),
        ("PAYOUT_MIN", "10.5", 1050),
        ("PAYOUT_MIN", "0.01", 1),
        ("PAYOUT_MAX", "2500.75", 250075),
        ("PAYOUT_MAX", "0", 0),
        ("PAYOUT_MAX", "0.00", 0),
        ("PAYOUT_FEE_TRC20", "1.5", 150),
        ("PAYOUT_FEE_TRC20", "0", 0),
        ("PAYOUT_FEE_BEP20", "0.3", 30),
        ("PACKAGE_MAX", "250", 25000),
        ("PACKAGE_MAX", "999999999.99", 99999999999),
    ],
)
def test_money_settings_are_parsed_to_integer_cents(name: str, raw: str, cents: int) -> None:
    value = _money_value(load_settings({**BASE, name: raw}), name)
    assert value == cents
    assert type(value) is int


def test_payout_max_zero_means_no_maximum_whatever_the_minimum() -> None:
    policy = load_settings({**BASE, "PAYOUT_MIN": "5000", "PAYOUT_MAX": "0"}).policy
    assert (policy.payout_min, policy.payout_max) == (500000, 0)
    equal = load_settings({**BASE, "PAYOUT_MIN": "50", "PAYOUT_MAX": "50"}).policy
    assert (equal.payout_min, equal.payout_max) == (5000, 5000)


MONEY_NAMES = {
    "PAYOUT_MIN": False,
    "PAYOUT_MAX": True,
    "PAYOUT_FEE_TRC20": True,
    "PAYOUT_FEE_BEP20": True,
    "PACKAGE_MAX": False,
}


@pytest.mark.parametrize("name", list(MONEY_NAMES))
@pytest.mark.parametrize(
    "raw", ["abc", "-1", "1.234", "1e3", "1_000", "10,50", "Infinity", "NaN", "+5", "１００"]
)
def test_bad_money_refused(name: str, raw: str) -> None:
    assert problems_of({**BASE, name: raw}) == [money_line(name, MONEY_NAMES[name])]


@pytest.mark.parametrize("name", ["PAYOUT_MIN", "PACKAGE_MAX"])
def test_zero_refused_where_zero_means_nothing(name: str) -> None:
    assert problems_of({**BASE, name: "0"}) == [money_line(name, False)]


# --- ports, URLs, addresses, hosts ----------------------------------------------------------------
PORTS = [
    ("WEBHOOK_PORT", {}),
    ("SANDBOX_PORT", {}),
    ("MYSQL_PORT", {"MYSQL_HOST": "db.example.com"}),
]


@pytest.mark.parametrize(("name", "extra"), PORTS, ids=[p[0] for p in PORTS])
@pytest.mark.parametrize("raw", ["0", "65536", "99999999999", "abc", "-1", "80.5", "+80", "8 0"])
def test_ports_out_of_range_or_not_numbers_refused(
    name: str, extra: dict[str, str], raw: str
) -> None:
    assert problems_of({**BASE, **extra, name: raw}) == [whole_number_line(name, 1, 65535)]


@pytest.mark.parametrize(("name", "extra"), PORTS, ids=[p[0] for p in PORTS])
@pytest.mark.parametrize(("raw", "port"), [("1", 1), ("65535", 65535), (" 8080 ", 8080)])
def test_ports_in_range_accepted(name: str, extra: dict[str, str], raw: str, port: int) -> None:
    settings = load_settings({**BASE, **extra, name: raw})
    value = {
        "WEBHOOK_PORT": settings.webhook_port,
        "SANDBOX_PORT": settings.sandbox_port,
        "MYSQL_PORT": settings.storage.mysql.port if settings.storage.mysql else None,
    }[name]
    assert value == port


@pytest.mark.parametrize("name", ["NOTIFY_URL", "RETURN_URL", "TELEGRAM_API_URL"])
@pytest.mark.parametrize(
    "raw",
    [
        "bot.example.com/notify",
        "https:///path",
        "javascript:alert(1)",
        "//bot.example.com/notify",
        "ftp://bot.example.com/",
        "mailto:admin@example.com",
    ],
)
def test_malformed_urls_refused(name: str, raw: str) -> None:
    assert problems_of({**BASE, name: raw}) == [
        f"{name}: expected an http:// or https:// URL with a host, got {raw!r}"
    ]


def test_malformed_url_is_quoted_only_in_part() -> None:
    raw = "x" * 200
    (line,) = problems_of({**BASE, "RETURN_URL": raw})
    assert line == f"RETURN_URL: expected an http:// or https:// URL with a host, got {raw[:80]!r}"


@pytest.mark.parametrize(
    "raw", ["https://bot.example.com/notify?x=1", "https://bot.example.com/?a=b&c=d"]
)
def test_notify_url_with_a_query_refused(raw: str) -> None:
    assert problems_of({**LIVE, "NOTIFY_URL": raw}) == [
        "NOTIFY_URL: must not carry query parameters (newer Jeepay signs them in)"
    ]


def test_urls_accepted_as_given() -> None:
    settings = load_settings(
        {
            **LIVE,
            "RETURN_URL": "https://shop.example.com/back?x=1",
            "TELEGRAM_API_URL": "https://tg.example.com/bot",
        }
    )
    assert settings.notify_url == "https://bot.example.com/notify"
    assert settings.return_url == "https://shop.example.com/back?x=1"
    assert settings.telegram_api_url == "https://tg.example.com/bot"
    assert load_settings(BASE).telegram_api_url == "https://api.telegram.org/bot"


@pytest.mark.parametrize("name", ["NOTIFY_ALLOWED_IPS", "TRUSTED_PROXIES"])
def test_ip_lists_parsed(name: str) -> None:
    settings = load_settings({**BASE, name: " 1.2.3.4, 10.0.0.0/8 ,::1,192.168.1.7/24,"})
    value = (
        settings.notify_allowed_ips if name == "NOTIFY_ALLOWED_IPS" else settings.trusted_proxies
    )
    assert value == ("1.2.3.4/32", "10.0.0.0/8", "::1/128", "192.168.1.0/24")
    empty = load_settings(BASE)
    assert (empty.notify_allowed_ips, empty.trusted_proxies) == ((), ())


@pytest.mark.parametrize("name", ["NOTIFY_ALLOWED_IPS", "TRUSTED_PROXIES"])
def test_bad_ip_list_items_refused_one_line_each(name: str) -> None:
    problems = problems_of({**BASE, name: "1.2.3.4, 1.2.3, example.com,10.0.0.0/33"})
    prefix = f"{name}: expected IP addresses or networks separated by commas, got "
    assert problems == [prefix + "'1.2.3'", prefix + "'example.com'", prefix + "'10.0.0.0/33'"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_sandbox_host_on_loopback_accepted(host: str) -> None:
    assert load_settings({**BASE, "SANDBOX_HOST": host}).sandbox_host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::", "10.0.0.1"])
def test_sandbox_host_off_loopback_refused(host: str) -> None:
    assert problems_of({**BASE, "SANDBOX_HOST": host}) == [
        "SANDBOX_HOST: the sandbox binds to a loopback address only (127.0.0.1)"
    ]


def test_webhook_host_defaults_to_loopback() -> None:
    settings = load_settings(BASE)
    assert (settings.webhook_host, settings.webhook_port) == ("127.0.0.1", 8000)
    assert load_settings({**BASE, "WEBHOOK_HOST": "0.0.0.0"}).webhook_host == "0.0.0.0"


# --- provider dialect, flags, log level ---------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "dialect", "signed"),
    [
        (None, "ggusonepay", False),
        ("ggusonepay", "ggusonepay", False),
        ("jeepay", "jeepay", True),
        ("JeePay", "jeepay", True),
        (" JEEPAY ", "jeepay", True),
    ],
)
def test_dialect_and_the_response_sign_default(raw: str | None, dialect: str, signed: bool) -> None:
    provider = load_settings(merged(BASE, {"PROVIDER_DIALECT": raw})).provider
    assert provider.dialect == dialect
    assert provider.require_response_sign is signed


@pytest.mark.parametrize(
    ("dialect", "raw", "signed"),
    [
        ("jeepay", "0", False),
        ("jeepay", "off", False),
        ("ggusonepay", "1", True),
        ("ggusonepay", "yes", True),
        ("ggusonepay", "TRUE", True),
        ("jeepay", "no", False),
        ("ggusonepay", "on", True),
        ("jeepay", "false", False),
    ],
)
def test_response_sign_flag_overrides_the_default(dialect: str, raw: str, signed: bool) -> None:
    values = {**BASE, "PROVIDER_DIALECT": dialect, "PROVIDER_REQUIRE_RESPONSE_SIGN": raw}
    assert load_settings(values).provider.require_response_sign is signed


def test_verify_notify_by_query_flag() -> None:
    assert load_settings(BASE).provider.verify_notify_by_query is False
    values = {**BASE, "PROVIDER_VERIFY_NOTIFY_BY_QUERY": "1"}
    assert load_settings(values).provider.verify_notify_by_query is True


@pytest.mark.parametrize(
    ("raw", "level"), [(None, "INFO"), ("", "INFO"), ("debug", "DEBUG"), (" Warning ", "WARNING")]
)
def test_log_level_accepted(raw: str | None, level: str) -> None:
    assert load_settings(merged(BASE, {"LOG_LEVEL": raw})).log_level == level


@pytest.mark.parametrize("raw", ["verbose", "TRACE", "10", "warn"])
def test_log_level_refused(raw: str) -> None:
    assert problems_of({**BASE, "LOG_LEVEL": raw}) == [
        "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]


# --- secrets --------------------------------------------------------------------------------------
SECRET_TOKEN = "987654321:SECRETbotTOKENxyzzy_abcdefghij"
SECRET_KEY = "SECRETproviderKEY-0123456789"
SECRET_PREVIOUS = "SECRETpreviousKEY-9876543210"
SECRET_PASSWORD = "SECRETmysqlPASSWORD-42"
SECRETS = (SECRET_TOKEN, SECRET_KEY, SECRET_PREVIOUS, SECRET_PASSWORD)
SECRET_VALUES = {
    **LIVE,
    "BOT_TOKEN": SECRET_TOKEN,
    "PROVIDER_KEY": SECRET_KEY,
    "PROVIDER_KEY_PREVIOUS": SECRET_PREVIOUS,
    "MYSQL_HOST": "db.example.com",
    "MYSQL_PASSWORD": SECRET_PASSWORD,
}


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret[:12] not in text  # not even a recognisable piece


def test_secrets_never_in_a_repr() -> None:
    settings = load_settings(SECRET_VALUES)
    assert settings.bot_token == SECRET_TOKEN
    assert settings.provider.key == SECRET_KEY
    assert settings.provider.key_previous == SECRET_PREVIOUS
    assert settings.storage.mysql is not None
    assert settings.storage.mysql.password == SECRET_PASSWORD
    # The token's secret part (after the colon) is redacted on its own too.
    assert set(settings.secrets()) == set(SECRETS) | {SECRET_TOKEN.split(":", 1)[1]}
    for shown in (
        repr(settings),
        str(settings),
        repr(settings.provider),
        repr(settings.storage),
        repr(settings.storage.mysql),
        repr(settings.policy),
    ):
        _assert_no_secret(shown)


@pytest.mark.parametrize(
    "overrides",
    [
        {"BOT_TOKEN": "SECRETbotTOKENxyzzy but malformed"},
        {"BOT_TOKEN": SECRET_TOKEN + " trailing"},
        {"PROVIDER_KEY": "SECRETproviderK"},  # 15 characters: too short for live
        {"PROVIDER_KEY_PREVIOUS": "SECRETpreviousK"},  # the same for the previous key
        {"PROVIDER_KEY": SECRET_KEY, "PROVIDER_KEY_PREVIOUS": SECRET_PREVIOUS, "WEBHOOK_PORT": "x"},
        {"MYSQL_PASSWORD": SECRET_PASSWORD, "MYSQL_PORT": "0", "MYSQL_DATABASE": "bad-name"},
    ],
)
def test_secrets_never_in_a_problem_line(overrides: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**SECRET_VALUES, **overrides})
    problems = caught.value.problems
    assert problems  # something really was refused
    for value in overrides.values():
        if value.startswith("SECRET") or "SECRET" in value:
            for line in problems:
                assert value not in line
                assert "SECRET" not in line
    _assert_no_secret(str(caught.value))


# --- need_bot=False (migrate, ledger-check) ---------------------------------------------------
def test_without_the_bot_no_token_admins_or_notify_url_are_needed() -> None:
    settings = load_settings({"PROVIDER_BASE_URL": "sandbox"}, need_bot=False)
    assert settings.bot_token == ""
    assert settings.admin_ids == frozenset()
    assert settings.installation_kind == "sandbox"
    live = merged(LIVE, {"BOT_TOKEN": None, "ADMIN_IDS": None, "NOTIFY_URL": None})
    assert load_settings(live, need_bot=False).installation_kind == "live"
    assert sorted(problems_of(live, need_bot=True)) == sorted(
        [
            "BOT_TOKEN: expected the bot token from @BotFather (put it in .env)",
            ADMIN_LINE,
            "NOTIFY_URL: expected an https:// URL",
        ]
    )


def test_without_the_bot_given_values_are_still_checked() -> None:
    values = {"PROVIDER_BASE_URL": "sandbox", "ADMIN_IDS": "1,x", "BOT_TOKEN": "bad"}
    assert sorted(problems_of(values, need_bot=False)) == sorted(
        [ADMIN_LINE, "BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives"]
    )


# --- .env -----------------------------------------------------------------------------------------
def test_read_dotenv_forms(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        'DOUBLE="two words"\n'
        "SINGLE='it is'\n"
        'HASH_IN_QUOTES="a # b"\n'
        "INLINE=abc # trailing comment\n"
        "NO_SPACE_HASH=abc#def\n"
        "EQUALS=a=b=c\n"
        "  SPACED  =  padded  \n"
        "EMPTY=\n"
        'EMPTY_QUOTES=""\n'
        "PLAIN=later wins\n",
        encoding="utf-8",
    )
    assert read_dotenv(path) == {
        "PLAIN": "later wins",
        "EXPORTED": "yes",
        "DOUBLE": "two words",
        "SINGLE": "it is",
        "HASH_IN_QUOTES": "a # b",
        "INLINE": "abc",
        "NO_SPACE_HASH": "abc#def",
        "EQUALS": "a=b=c",
        "SPACED": "padded",
        "EMPTY": "",
        "EMPTY_QUOTES": "",
    }


def test_read_dotenv_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / "absent.env") == {}


@pytest.mark.parametrize(
    "bad",
    [
        "JUST_A_WORD",
        "1KEY=value",
        "BAD KEY=value",
        "=value",
        "KEY-NAME=value",
        "BOT_TOKEN 987654321:SECRETbotTOKENxyzzy_abcdefghij",
    ],
)
def test_read_dotenv_malformed_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / ".env"
    path.write_text(f"# first\nGOOD=1\n{bad}\nLATER=2\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        read_dotenv(path)
    assert caught.value.problems == [f"{path}:3: expected KEY=value"]
    assert "SECRET" not in str(caught.value)  # the line's content is not echoed


def test_read_dotenv_quoted_value_with_a_trailing_comment(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f'BOT_TOKEN="{GOOD_TOKEN}" # from @BotFather\n', encoding="utf-8")
    assert read_dotenv(path) == {"BOT_TOKEN": GOOD_TOKEN}


def test_the_environment_overrides_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("BOT_TOKEN=from-file\nADMIN_IDS=1\nLOG_LEVEL=DEBUG\n", encoding="utf-8")
    values = gather(env={"BOT_TOKEN": GOOD_TOKEN, "LOG_LEVEL": "", "not-a-key": "x"}, dotenv=path)
    assert values == {"BOT_TOKEN": GOOD_TOKEN, "ADMIN_IDS": "1", "LOG_LEVEL": ""}


def test_gather_reads_the_file_named_by_flamepay_env_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.env"
    path.write_text("ADMIN_IDS=42\nPROVIDER_BASE_URL=sandbox\n", encoding="utf-8")
    values = gather(env={"FLAMEPAY_ENV_FILE": str(path), "BOT_TOKEN": GOOD_TOKEN})
    settings = load_settings(values)
    assert settings.admin_ids == frozenset({42})
    assert settings.bot_token == GOOD_TOKEN


def test_gather_malformed_dotenv_raises_settings_error(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("oops\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        gather(env={}, dotenv=path)
    assert caught.value.problems == [f"{path}:1: expected KEY=value"]


# --- the flamepay command -------------------------------------------------------------------------
FRESH_DOTENV = f"BOT_TOKEN={GOOD_TOKEN}\nADMIN_IDS=123456789\nPROVIDER_BASE_URL=sandbox\n"


def run_cli(
    tmp_path: Path, command: str, dotenv: str | bytes | None = None, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / ".env"
    if isinstance(dotenv, bytes):
        env_file.write_bytes(dotenv)
    elif dotenv is not None:
        env_file.write_text(dotenv, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "FLAMEPAY_ENV_FILE": str(env_file),
        "HOME": str(tmp_path),
        **env_extra,
    }
    assert "MYSQL_HOST" not in env
    return subprocess.run(
        [sys.executable, "-m", "entrypoints", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_fresh_directory_check_migrate_ledger_check(tmp_path: Path) -> None:
    checked = run_cli(tmp_path, "check-settings", FRESH_DOTENV)
    assert (checked.returncode, checked.stderr) == (0, "")
    assert checked.stdout.startswith(
        "settings ok: development, sandbox installation, SQLite var/flamepay.sqlite3, fee 15%"
    )
    database = tmp_path / "var" / "flamepay.sqlite3"
    assert not database.exists()  # check-settings touches nothing

    migrated = run_cli(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "Traceback" not in migrated.stderr
    assert database.is_file()
    assert migrated.stdout.splitlines()[-1].endswith("sandbox installation")

    checked_books = run_cli(tmp_path, "ledger-check")
    assert checked_books.returncode == 0, checked_books.stderr
    assert checked_books.stdout.splitlines()[-1] == "ledger-check: clean"


def test_cli_ledger_check_before_migrate_says_so(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "ledger-check", FRESH_DOTENV)
    assert result.returncode == 2
    assert result.stderr.startswith("ledger-check: no SQLite database at var/flamepay.sqlite3")
    assert "Traceback" not in result.stderr


def test_cli_check_settings_bad_setting_exit_2(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check-settings", FRESH_DOTENV + "WEBHOOK_PORT=70000\n")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [whole_number_line("WEBHOOK_PORT", 1, 65535)]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_check_settings_lists_every_problem(tmp_path: Path) -> None:
    dotenv = "BOT_TOKEN=bad\nADMIN_IDS=\nPROVIDER_BASE_URL=\nLOG_LEVEL=loud\n"
    result = run_cli(tmp_path, "check-settings", dotenv)
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == sorted(
        [
            "BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives",
            ADMIN_LINE,
            BASE_URL_EMPTY_LINE,
            "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ]
    )
    assert "Traceback" not in result.stderr


def test_cli_migrate_bad_setting_exit_2_and_no_database(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "migrate", "PROVIDER_BASE_URL=Sandbox\n")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "PROVIDER_BASE_URL: expected the gateway's https:// URL, or exactly 'sandbox' "
        "(got 'Sandbox')"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_cli_migrate_needs_no_bot_settings(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "migrate", "PROVIDER_BASE_URL=sandbox\n")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "flamepay.sqlite3").is_file()


def test_cli_malformed_dotenv_line_names_file_and_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check-settings", FRESH_DOTENV + "this is not a setting\n")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{tmp_path / '.env'}:4: expected KEY=value"]
    assert "Traceback" not in result.stderr


def test_cli_environment_overrides_dotenv(tmp_path: Path) -> None:
    dotenv = FRESH_DOTENV + "WEBHOOK_PORT=70000\n"
    result = run_cli(tmp_path, "check-settings", dotenv, WEBHOOK_PORT="8080")
    assert (result.returncode, result.stderr) == (0, "")
    refused = run_cli(tmp_path, "check-settings", FRESH_DOTENV, ADMIN_IDS="-1")
    assert (refused.returncode, refused.stderr.splitlines()) == (2, [ADMIN_LINE])


def test_cli_keeps_secrets_off_stderr(tmp_path: Path) -> None:
    dotenv = (
        "BOT_TOKEN=SECRETbotTOKENxyzzy-malformed\nADMIN_IDS=1\n"
        "PROVIDER_BASE_URL=https://pay.example.com\nPROVIDER_KEY=SECRETproviderK\n"
        f"PROVIDER_KEY_PREVIOUS={SECRET_PREVIOUS}\nPROVIDER_MCH_NO=M1\n"
        "NOTIFY_URL=https://bot.example.com/notify\n"
    )
    result = run_cli(tmp_path, "check-settings", dotenv)
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == sorted(
        ["BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives", KEY_LINE]
    )
    assert "SECRET" not in result.stderr + result.stdout


def test_cli_dotenv_not_utf8_gives_a_line_not_a_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check-settings", FRESH_DOTENV.encode() + b"RETURN_URL=caf\xe9\n")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert str(tmp_path / ".env") in result.stderr
