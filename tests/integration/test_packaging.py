"""The packages import from this repository, and the command answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize("name", ["flamepay", "adapters", "entrypoints"])
def test_package_comes_from_this_repository(name: str) -> None:
    # 'adapters' and 'entrypoints' are also names of unrelated PyPI packages.
    module = __import__(name)
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_installed_distribution_points_here() -> None:
    from importlib.metadata import distribution

    dist = distribution("flamepay")
    assert dist.version
    code = "import adapters, entrypoints; print(adapters.__file__); print(entrypoints.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(ROOT) for p in out), out


def _flamepay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_version() -> None:
    from flamepay import __version__

    result = _flamepay("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"flamepay {__version__}"


def test_help_lists_the_command() -> None:
    result = _flamepay("--help")
    assert result.returncode == 0
    assert "usage: flamepay" in result.stdout


def test_unknown_subcommand_is_a_clear_error() -> None:
    result = _flamepay("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid choice" in result.stderr


def test_run_without_token_or_admins_names_both_and_the_demo(tmp_path) -> None:
    import os

    env_file = tmp_path / ".env"
    env_file.write_text("PROVIDER_BASE_URL=sandbox\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "ADMIN_IDS")}
    env["FLAMEPAY_ENV_FILE"] = str(env_file)
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("BOT_TOKEN:") and ".env" in line for line in lines)
    assert any(line.startswith("ADMIN_IDS:") for line in lines)
    assert lines[-1] == "flamepay demo runs the whole story offline and needs neither."
    assert "Traceback" not in result.stderr
