"""flamepay migrate and flamepay ledger-check against a real MariaDB."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from adapters import mysql_ops
from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.sql.migrate import MigrationError
from tests.helpers import ROOT
from tests.helpers.dbs import mysql_base_config, wipe_mysql

pytestmark = pytest.mark.mysql


@pytest.fixture
def fresh_config(mysql_config: MySqlConfig):
    """An empty, uniquely named database (not yet migrated), dropped afterwards."""
    config = mysql_base_config(f"fp_ops_{os.getpid()}_{secrets.token_hex(3)}")
    yield config
    connection = MySqlDatabase(config).raw_connection(database=False)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{config.database}`")
    connection.close()


def run(config: MySqlConfig, sql: str) -> list[tuple]:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = list(cursor.fetchall())
        connection.commit()
        return rows
    finally:
        connection.close()


def schema_of(config: MySqlConfig) -> dict[str, str]:
    tables = [r[0] for r in run(config, "SHOW TABLES")]
    return {t: run(config, f"SHOW CREATE TABLE `{t}`")[0][1] for t in tables}


def flamepay_cli(config: MySqlConfig, *args: str, kind: str = "sandbox"):
    env = {
        **os.environ,
        "MYSQL_HOST": config.host,
        "MYSQL_PORT": str(config.port),
        "MYSQL_USER": config.user,
        "MYSQL_PASSWORD": config.password,
        "MYSQL_DATABASE": config.database,
        "PROVIDER_BASE_URL": "sandbox" if kind == "sandbox" else "https://pay.example.com",
        "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
        "PROVIDER_KEY": "a-live-merchant-key-0123456789",
        "PROVIDER_MCH_NO": "M1001",
    }
    return subprocess.run(
        [sys.executable, "-m", "entrypoints", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_twice_leaves_the_same_schema(fresh_config) -> None:
    first = flamepay_cli(fresh_config, "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied 0001_core" in first.stdout
    schema = schema_of(fresh_config)
    assert {"orders", "journals", "ledger_entries", "schema_migrations", "installation"} <= set(
        schema
    )
    second = flamepay_cli(fresh_config, "migrate")
    assert second.returncode == 0, second.stderr
    assert "0 applied" in second.stdout
    assert schema_of(fresh_config) == schema
    kind, merchant, key = run(
        fresh_config, "SELECT kind, merchant_no, merchant_key FROM installation"
    )[0]
    assert kind == "sandbox" and merchant.startswith("SBX") and len(key) == 48
    # The generated key is never printed.
    assert key.decode() not in first.stdout + first.stderr + second.stdout + second.stderr


def test_migrate_refuses_the_other_installation_kind(fresh_config) -> None:
    assert flamepay_cli(fresh_config, "migrate").returncode == 0
    live = flamepay_cli(fresh_config, "migrate", kind="live")
    assert live.returncode == 2
    assert "sandbox installation" in live.stderr and "Traceback" not in live.stderr


def test_migrate_refuses_a_changed_file(fresh_config, tmp_path, monkeypatch) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(ROOT / "schema", schema)
    monkeypatch.setenv("FLAMEPAY_SCHEMA_DIR", str(schema))
    mysql_ops.migrate(fresh_config, "sandbox")
    core_file = schema / "mysql" / "0001_core.sql"
    core_file.write_text(core_file.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match=r"0001_core\.sql was changed after it was applied"):
        mysql_ops.migrate(fresh_config, "sandbox")


def test_migrate_reports_an_unreachable_database() -> None:
    config = mysql_base_config("nothing")
    unreachable = MySqlConfig(host="127.0.0.1", port=1, user=config.user, database="x")
    result = flamepay_cli(unreachable, "migrate")
    assert result.returncode == 2
    assert "cannot connect to MySQL" in result.stderr and "Traceback" not in result.stderr


def check(config: MySqlConfig) -> tuple[int, str]:
    out = io.StringIO()
    code = mysql_ops.check_ledger(config, out)
    return code, out.getvalue()


def test_ledger_check_is_clean_after_the_concurrency_drills(mysql_config) -> None:
    # The drills leave their books in the shared database until the next test wipes it; run
    # the drills' scenarios here again and check what they leave behind.
    from tests.integration import test_mysql_concurrency as drills

    wipe_mysql(mysql_config)
    drills.apply_same_report_50_times(mysql_config, drills.MYSQL)
    drills.request_50_payouts(mysql_config, drills.SqlUnitOfWork)[1].uow.database.close()
    drills.race_resolutions(mysql_config, drills.MYSQL, 3)
    code, report = check(mysql_config)
    assert code == 0, report
