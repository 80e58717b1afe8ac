"""What the `flamepay` subcommands do; each returns the process exit code."""

from __future__ import annotations

import sys

from adapters import mysql_ops
from adapters.sql.migrate import MigrationError
from entrypoints.settings import (
    Reader,
    SettingsError,
    StorageSettings,
    gather,
    installation_kind,
    read_provider_base_url,
    read_storage,
)
from flamepay.errors import StorageUnavailable

SETTINGS_EXIT = 2


def _storage_and_kind() -> tuple[StorageSettings, str]:
    reader = Reader(gather())
    storage = read_storage(reader)
    kind = installation_kind(read_provider_base_url(reader))
    if reader.problems:
        raise SettingsError(reader.problems)
    return storage, kind


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return SETTINGS_EXIT


def migrate() -> int:
    try:
        storage, kind = _storage_and_kind()
        if storage.mysql is None:
            return _fail(["migrate: the SQLite backend is not built yet; set MYSQL_HOST"])
        result = mysql_ops.migrate(storage.mysql, kind)
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
        storage, _ = _storage_and_kind()
        if storage.mysql is None:
            return _fail(["ledger-check: the SQLite backend is not built yet; set MYSQL_HOST"])
        return mysql_ops.check_ledger(storage.mysql, sys.stdout)
    except SettingsError as error:
        return _fail(error.problems)
    except StorageUnavailable as error:
        return _fail([f"ledger-check: {error}"])
