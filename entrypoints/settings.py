"""Settings: read from `.env` and the environment (the environment wins), parsed strictly.

A bad or missing setting stops start-up with one line per problem naming the setting and
what is expected. Secrets are kept out of every repr and message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from adapters.mysql import MySqlConfig
from entrypoints.configuration import ProviderSettings, Settings, StorageSettings
from flamepay.errors import InvalidAmount
from flamepay.money import parse_amount, parse_fee_percent
from flamepay.payout import Network
from flamepay.policy import PaymentPolicy


class SettingsError(Exception):
    """One or more settings are wrong; `problems` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines; '#' comments; optional single or double quotes around the value."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError([f"{path}: expected UTF-8 text"]) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or _KEY.fullmatch(key) is None:
            raise SettingsError([f"{path}:{number}: expected KEY=value"])
        value = value.strip()
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0 or (rest and not rest.startswith("#")):
                raise SettingsError([f"{path}:{number}: {key}: expected a closing quote"])
            value = value[1:end]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def gather(env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> dict[str, str]:
    """The values in force: `.env` (default ./.env or FLAMEPAY_ENV_FILE) under the environment."""
    env = os.environ if env is None else env
    named = env.get("FLAMEPAY_ENV_FILE")
    path = dotenv or Path(named or ".env")
    if named and dotenv is None and not path.is_file():
        raise SettingsError([f"FLAMEPAY_ENV_FILE: no file at {named[:200]}"])
    values = read_dotenv(path)
    values.update({k: v for k, v in env.items() if _KEY.fullmatch(k)})
    return values


class Reader:
    """Collects problems instead of stopping at the first, so the operator sees them all."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw == "":
            return default
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            self.problems.append(f"{name}: expected a whole number from {low} to {high}")
            return default
        value = int(raw)
        if not low <= value <= high:
            self.problems.append(f"{name}: expected a whole number from {low} to {high}")
            return default
        return value

    def fail(self, message: str) -> None:
        self.problems.append(message)


def read_storage(reader: Reader) -> StorageSettings:
    host = reader.text("MYSQL_HOST")
    pool_size = reader.integer("MYSQL_POOL_SIZE", 5, 1, 100)
    if host:
        database = reader.text("MYSQL_DATABASE", "flamepay")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", database):
            reader.fail("MYSQL_DATABASE: expected letters, digits and '_' (at most 64)")
        user = reader.text("MYSQL_USER", "flamepay")
        if not user:
            reader.fail("MYSQL_USER: expected the MySQL user name")
        config = MySqlConfig(
            host=host,
            port=reader.integer("MYSQL_PORT", 3306, 1, 65535),
            user=user,
            password=reader.values.get("MYSQL_PASSWORD", ""),
            database=database,
            pool_size=pool_size,
        )
        return StorageSettings(config, None, False)
    raw_path = reader.text("SQLITE_PATH")
    return StorageSettings(None, Path(raw_path or "var/flamepay.sqlite3"), bool(raw_path))


def read_provider_base_url(reader: Reader) -> str:
    value = reader.text("PROVIDER_BASE_URL")
    if not value:
        reader.fail(
            "PROVIDER_BASE_URL: expected the gateway's https URL, or exactly 'sandbox' for the "
            "built-in sandbox gateway"
        )
    return value


# --- the whole configuration ---------------------------------------------------------------------
_BOT_TOKEN = re.compile(r"[0-9]{3,15}:[A-Za-z0-9_-]{20,100}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_LIVE_KEY = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(reader: Reader, name: str, required: bool, default: str = "") -> str:
    value = reader.text(name, default)
    if not value:
        if required:
            reader.fail(f"{name}: expected an https:// URL")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        reader.fail(f"{name}: expected an http:// or https:// URL with a host, got {value[:80]!r}")
        return ""
    return value


def _flag(reader: Reader, name: str, default: bool) -> bool:
    raw = reader.text(name).lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    reader.fail(f"{name}: expected 1 or 0")
    return default


def _money(reader: Reader, name: str, default: int, zero_ok: bool) -> int:
    raw = reader.text(name)
    if raw == "":
        return default
    if zero_ok and re.fullmatch(r"0+(\.0{1,2})?", raw):
        return 0
    try:
        return parse_amount(raw)
    except InvalidAmount:
        reader.fail(f"{name}: expected an amount like 10 or 10.50" + (" (or 0)" if zero_ok else ""))
        return default


def _addresses(reader: Reader, name: str) -> tuple[str, ...]:
    found = []
    for item in filter(None, (p.strip() for p in reader.text(name).split(","))):
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            reader.fail(
                f"{name}: expected IP addresses or networks separated by commas, got {item[:40]!r}"
            )
    return tuple(found)


def _admin_ids(reader: Reader) -> frozenset[int]:
    raw = reader.text("ADMIN_IDS")
    items = [p.strip() for p in raw.split(",")] if raw else []
    if not items or not all(re.fullmatch(r"[1-9][0-9]{0,19}", i) for i in items):
        reader.fail(
            "ADMIN_IDS: expected the Telegram user ids of the admins, positive integers "
            "separated by commas (for example 123456789 or 123456789,987654321); put them in .env"
        )
        return frozenset()
    return frozenset(int(i) for i in items)


def _host(reader: Reader, name: str, default: str) -> str:
    value = reader.text(name, default) or default
    if not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,255}", value):
        reader.fail(f"{name}: expected a host name or IP address")
        return default
    return value


def load_settings(values: Mapping[str, str], need_bot: bool = True) -> Settings:
    """Parse and check everything; SettingsError lists one line per problem.

    `need_bot`: the bot token and the admins are required (run, bot); migrate and
    ledger-check need only storage and the provider's kind.
    """
    r = Reader(values)
    app_env = r.text("APP_ENV", "development") or "development"
    if app_env not in ("development", "production"):
        r.fail("APP_ENV: expected development or production")
    production = app_env == "production"

    bot_token = r.text("BOT_TOKEN")
    if need_bot and not bot_token:
        r.fail("BOT_TOKEN: expected the bot token from @BotFather (put it in .env)")
    elif bot_token and _BOT_TOKEN.fullmatch(bot_token) is None:
        r.fail("BOT_TOKEN: expected the form 123456789:ABC... that @BotFather gives")
    admin_ids = _admin_ids(r) if need_bot or r.text("ADMIN_IDS") else frozenset()
    telegram_api_url = _url(r, "TELEGRAM_API_URL", True, "https://api.telegram.org/bot")

    storage = read_storage(r)
    provider = _provider(r)
    policy = _policy(r)
    live = bool(provider.base_url) and not provider.is_sandbox
    notify_url = _url(r, "NOTIFY_URL", live and need_bot)
    if notify_url and urlsplit(notify_url).query:
        r.fail("NOTIFY_URL: must not carry query parameters (newer Jeepay signs them in)")
    return_url = _url(r, "RETURN_URL", False)

    if live:
        _live_rules(r, provider, notify_url)
    if production:
        _production_rules(
            r,
            provider,
            storage,
            (
                ("PROVIDER_BASE_URL", provider.base_url),
                ("NOTIFY_URL", notify_url),
                ("RETURN_URL", return_url),
                ("TELEGRAM_API_URL", telegram_api_url),
            ),
        )

    log_level = r.text("LOG_LEVEL", "INFO").upper() or "INFO"
    if log_level not in _LOG_LEVELS:
        r.fail(f"LOG_LEVEL: expected one of {', '.join(_LOG_LEVELS)}")
    sandbox_host = _host(r, "SANDBOX_HOST", "127.0.0.1")
    if not is_loopback(sandbox_host):
        r.fail("SANDBOX_HOST: the sandbox binds to a loopback address only (127.0.0.1)")
    settings = Settings(
        app_env=app_env,
        bot_token=bot_token,
        admin_ids=admin_ids,
        telegram_api_url=telegram_api_url,
        storage=storage,
        provider=provider,
        policy=policy,
        notify_url=notify_url,
        return_url=return_url,
        webhook_host=_host(r, "WEBHOOK_HOST", "127.0.0.1"),
        webhook_port=r.integer("WEBHOOK_PORT", 8000, 1, 65535),
        notify_allowed_ips=_addresses(r, "NOTIFY_ALLOWED_IPS"),
        trusted_proxies=_addresses(r, "TRUSTED_PROXIES"),
        log_level=log_level,
        reconcile_interval_seconds=r.integer("RECONCILE_INTERVAL_SECONDS", 120, 5, 86400),
        alert_interval_minutes=r.integer("ALERT_INTERVAL_MINUTES", 30, 1, 1440),
        sandbox_host=sandbox_host,
        sandbox_port=r.integer("SANDBOX_PORT", 9000, 1, 65535),
        sandbox_time_scale=r.integer("SANDBOX_TIME_SCALE", 1, 1, 100000),
        sandbox_late_success=_flag(r, "SANDBOX_LATE_SUCCESS", False),
        sandbox_notify_failures=_flag(r, "SANDBOX_NOTIFY_FAILURES", False),
        sandbox_duplicates=r.integer("SANDBOX_DUPLICATES", 1, 1, 100),
    )
    if r.problems:
        raise SettingsError(r.problems)
    return settings


def _provider(r: Reader) -> ProviderSettings:
    base_url = read_provider_base_url(r)
    if base_url and base_url != "sandbox":
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.fail(
                "PROVIDER_BASE_URL: expected the gateway's https:// URL, or exactly 'sandbox' "
                f"(got {base_url[:80]!r})"
            )
            base_url = ""
    dialect = r.text("PROVIDER_DIALECT", "ggusonepay").lower() or "ggusonepay"
    if dialect not in ("ggusonepay", "jeepay"):
        r.fail("PROVIDER_DIALECT: expected ggusonepay or jeepay")
    client_ip = r.text("PROVIDER_CLIENT_IP", "127.0.0.1") or "127.0.0.1"
    try:
        ipaddress.ip_address(client_ip)
    except ValueError:
        r.fail("PROVIDER_CLIENT_IP: expected an IP address (your server's)")
    key_previous = r.values.get("PROVIDER_KEY_PREVIOUS", "").strip()
    key_previous_until = _previous_until(r, key_previous)
    return ProviderSettings(
        base_url=base_url,
        dialect=dialect,
        mch_no=r.text("PROVIDER_MCH_NO"),
        key=r.values.get("PROVIDER_KEY", "").strip(),
        key_previous=key_previous,
        app_id=r.text("PROVIDER_APP_ID"),
        client_ip=client_ip,
        timeout_seconds=r.integer("PROVIDER_TIMEOUT_SECONDS", 15, 1, 120),
        require_response_sign=_flag(r, "PROVIDER_REQUIRE_RESPONSE_SIGN", dialect == "jeepay"),
        verify_notify_by_query=_flag(r, "PROVIDER_VERIFY_NOTIFY_BY_QUERY", False),
        key_previous_until=key_previous_until,
    )


def _previous_until(r: Reader, key_previous: str) -> date | None:
    raw = r.text("PROVIDER_KEY_PREVIOUS_UNTIL")
    if not raw:
        return None
    until = None
    # The exact form only: date.fromisoformat alone also takes 20260131 and 2026-W05-6.
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw, re.ASCII):
        with contextlib.suppress(ValueError):  # 2026-02-30, 2026-13-01
            until = date.fromisoformat(raw)
    if until is None:
        r.fail(
            "PROVIDER_KEY_PREVIOUS_UNTIL: expected a date as YYYY-MM-DD, the last day (UTC) "
            "the previous key is accepted"
        )
        return None
    if not key_previous:
        # An end with no key to end is a setting left behind or a typo: say so.
        r.fail(
            "PROVIDER_KEY_PREVIOUS_UNTIL: set it only together with PROVIDER_KEY_PREVIOUS "
            "(the key it ends)"
        )
        return None
    return until


def _policy(r: Reader) -> PaymentPolicy:
    fee_bp = 1500
    raw_fee = r.text("GLOBAL_FEE_PERCENT")
    if raw_fee:
        try:
            fee_bp = parse_fee_percent(raw_fee)
        except InvalidAmount:
            r.fail(
                "GLOBAL_FEE_PERCENT: expected a percentage from 0 to 100 with at most two "
                "decimals (for example 15 or 12.5)"
            )
    currency = r.text("DEFAULT_CURRENCY", "USD").upper() or "USD"
    if currency != "USD":
        shown = currency if re.fullmatch(r"[A-Z]{1,8}", currency) else repr(currency[:12])
        r.fail(
            f"DEFAULT_CURRENCY: {shown} is not supported; this version pays out USDT 1:1 "
            "against USD balances and converts nothing (set USD)"
        )
        currency = "USD"
    payout_min = _money(r, "PAYOUT_MIN", 10_00, zero_ok=False)
    payout_max = _money(r, "PAYOUT_MAX", 1000_00, zero_ok=True)
    if payout_max and payout_max < payout_min:
        r.fail("PAYOUT_MAX: expected 0 (no maximum) or an amount not below PAYOUT_MIN")
    return PaymentPolicy(
        currency=currency,
        fee_bp=fee_bp,
        merchant_no=r.text("PROVIDER_MCH_NO"),
        order_expire_minutes=r.integer("ORDER_EXPIRE_MINUTES", 30, 1, 1440),
        payout_min=payout_min,
        payout_max=payout_max,
        payout_fees={
            Network.TRC20: _money(r, "PAYOUT_FEE_TRC20", 0, zero_ok=True),
            Network.BEP20: _money(r, "PAYOUT_FEE_BEP20", 0, zero_ok=True),
        },
        max_open_orders=r.integer("MAX_OPEN_ORDERS", 3, 1, 100),
        package_max=_money(r, "PACKAGE_MAX", 10_000_00, zero_ok=False),
    )


def _live_rules(r: Reader, provider: ProviderSettings, notify_url: str) -> None:
    # A live installation can take real money: these hold whatever APP_ENV says.
    if len(provider.key) < MIN_LIVE_KEY:
        r.fail(
            f"PROVIDER_KEY: a live gateway needs the merchant key from the gateway, at least "
            f"{MIN_LIVE_KEY} characters"
        )
    if provider.key_previous and len(provider.key_previous) < MIN_LIVE_KEY:
        # It verifies notifies as PROVIDER_KEY does: a short one is as weak a door.
        r.fail(
            "PROVIDER_KEY_PREVIOUS: a live gateway needs the previous merchant key in full, "
            f"at least {MIN_LIVE_KEY} characters (or leave it empty)"
        )
    if not provider.mch_no:
        r.fail("PROVIDER_MCH_NO: a live gateway needs your merchant number")
    for name, url in (("PROVIDER_BASE_URL", provider.base_url), ("NOTIFY_URL", notify_url)):
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            r.fail(
                f"{name}: a live installation needs https:// here (plain http:// is allowed "
                "only on a loopback address, for local testing)"
            )


def _production_rules(
    r: Reader, provider: ProviderSettings, storage: StorageSettings, urls
) -> None:
    if provider.is_sandbox:
        r.fail("PROVIDER_BASE_URL: APP_ENV=production refuses the sandbox gateway")
    if storage.mysql is None and not storage.sqlite_path_explicit:
        r.fail("SQLITE_PATH: APP_ENV=production needs MYSQL_HOST or an explicit SQLITE_PATH")
    for name, url in urls:
        if urlsplit(url).scheme == "http":  # urlsplit lower-cases the scheme: HTTP:// too
            r.fail(f"{name}: APP_ENV=production refuses http:// URLs; use https://")
