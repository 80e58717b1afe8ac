"""What the `flamepay` subcommands do; each returns the process exit code."""

from __future__ import annotations

import sys

from adapters import mysql_ops, sqlite
from adapters.sql.migrate import MigrationError
from entrypoints.settings import Settings, SettingsError, gather, load_settings
from flamepay.errors import StorageUnavailable

SETTINGS_EXIT = 2


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return SETTINGS_EXIT


def _settings(need_bot: bool) -> Settings:
    return load_settings(gather(), need_bot=need_bot)


def check_settings() -> int:
    try:
        settings = _settings(need_bot=True)
    except SettingsError as error:
        return _fail(error.problems)
    storage = settings.storage
    where = (
        f"MySQL {storage.mysql.host}:{storage.mysql.port}/{storage.mysql.database}"
        if storage.mysql
        else f"SQLite {storage.sqlite_path}"
    )
    print(
        f"settings ok: {settings.app_env}, {settings.installation_kind} installation, {where}, "
        f"fee {settings.policy.fee_bp / 100:g}%, {len(settings.admin_ids)} admin(s)"
    )
    return 0


def migrate() -> int:
    try:
        settings = _settings(need_bot=False)
        storage = settings.storage
        if storage.mysql is not None:
            result = mysql_ops.migrate(storage.mysql, settings.installation_kind)
        else:
            result = sqlite.migrate(storage.sqlite_path, settings.installation_kind)
    except SettingsError as error:
        return _fail(error.problems)
    except (MigrationError, StorageUnavailable) as error:
        return _fail([f"migrate: {error}"])
    for name in result.applied:
        print(f"applied {name}")
    print(
        f"migrate: {len(result.applied)} applied, {len(result.already)} already there; "
        f"{result.installation.kind} installation"
    )
    return 0


def ledger_check() -> int:
    try:
        storage = _settings(need_bot=False).storage
        if storage.mysql is not None:
            return mysql_ops.check_ledger(storage.mysql, sys.stdout)
        return sqlite.check_ledger(storage.sqlite_path, sys.stdout)
    except SettingsError as error:
        return _fail(error.problems)
    except StorageUnavailable as error:
        return _fail([f"ledger-check: {error}"])
