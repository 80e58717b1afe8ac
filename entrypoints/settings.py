"""Settings: read from `.env` and the environment (the environment wins), parsed strictly.

A bad or missing setting stops start-up with one line per problem naming the setting and
what is expected. Secrets are kept out of every repr and message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from adapters.mysql import MySqlConfig


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
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or _KEY.fullmatch(key) is None:
            raise SettingsError([f"{path}:{number}: expected KEY=value"])
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def gather(env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> dict[str, str]:
    """The values in force: `.env` (default ./.env or FLAMEPAY_ENV_FILE) under the environment."""
    env = os.environ if env is None else env
    path = dotenv or Path(env.get("FLAMEPAY_ENV_FILE", ".env"))
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


@attrs.frozen
class StorageSettings:
    mysql: MySqlConfig | None
    sqlite_path: Path | None
    sqlite_path_explicit: bool


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


def installation_kind(provider_base_url: str) -> str:
    return "sandbox" if provider_base_url == "sandbox" else "live"
