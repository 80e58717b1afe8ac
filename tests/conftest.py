"""Shared test hooks: the stateful run's counters, shown after the run."""

from __future__ import annotations

from collections import Counter

import pytest

_STATEFUL_COUNTS = pytest.StashKey[Counter]()


@pytest.fixture
def stateful_counts(request: pytest.FixtureRequest) -> Counter:
    """A Counter the stateful run fills (rules fired, hard paths reached); printed at the end."""
    return request.config.stash.setdefault(_STATEFUL_COUNTS, Counter())


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    counts = config.stash.get(_STATEFUL_COUNTS, None)
    if not counts:
        return
    terminalreporter.section("stateful core: rules fired and paths reached")
    width = max(len(name) for name in counts)
    for name, count in sorted(counts.items()):
        terminalreporter.write_line(f"{name:<{width}}  {count:>7}")


# --- databases ---------------------------------------------------------------------------------
from tests.helpers.dbs import (  # noqa: E402, F401
    mysql_config,
    mysql_database,
    mysql_required,
    sqlite_database,
    uow_factory,
)
from tests.helpers.sandbox_world import open_world  # noqa: E402, F401 - the sandbox rig

_MYSQL_PASSED = pytest.StashKey[int]()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "mysql" in report.keywords:
        config = _CONFIG[0]
        config.stash[_MYSQL_PASSED] = config.stash.get(_MYSQL_PASSED, 0) + 1


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # With FLAMEPAY_REQUIRE_MYSQL=1 (CI), a run in which no MySQL test passed is a failure:
    # a green run must not hide that the database tests were skipped or deselected.
    if not mysql_required() or exitstatus != 0 or session.config.option.collectonly:
        return
    if session.testscollected and session.config.stash.get(_MYSQL_PASSED, 0) == 0:
        session.config.get_terminal_writer().line(
            "FLAMEPAY_REQUIRE_MYSQL=1 but no MySQL test passed", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
