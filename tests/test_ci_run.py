""".ci/run stops the local servers it started, pass or fail, and keeps the exit code.

.ci/run itself runs against a stand-in scripts/dev.sh that records its calls (the
real one would run this whole suite again); ``dev.sh running`` is checked for real
against the local stack below.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from booking import localstack

ROOT = Path(__file__).resolve().parents[1]

STAND_IN = """#!/usr/bin/env bash
here="$(cd "$(dirname "$0")/.." && pwd)"
echo "$*" >> "$here/calls"
case "$1" in
    running) cat "$here/running" ;;
    test) exit "$(cat "$here/test-rc")" ;;
    down) exit 0 ;;
esac
"""


def _ci_run(tmp_path: Path, running_before: str, test_rc: int) -> tuple[int, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "dev.sh").write_text(STAND_IN)
    (tmp_path / "running").write_text(running_before + "\n")
    (tmp_path / "test-rc").write_text(str(test_rc))
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, check=False
    )
    calls = (tmp_path / "calls").read_text().splitlines()
    return result.returncode, calls


@pytest.mark.parametrize("test_rc", [0, 1, 3])
def test_stops_both_servers_it_started_and_keeps_the_exit_code(
    tmp_path: Path, test_rc: int
) -> None:
    rc, calls = _ci_run(tmp_path, "", test_rc)
    assert rc == test_rc
    assert calls == ["running", "test", "down --postgres --redis"]


def test_leaves_a_stack_that_ran_before(tmp_path: Path) -> None:
    rc, calls = _ci_run(tmp_path, "postgres redis", 1)
    assert rc == 1
    assert calls == ["running", "test"]


def test_stops_only_what_it_started(tmp_path: Path) -> None:
    rc, calls = _ci_run(tmp_path, "postgres", 0)
    assert rc == 0
    assert calls == ["running", "test", "down --redis"]


def test_running_names_the_local_servers(tmp_path: Path) -> None:
    pg_port, redis_port = localstack.env_ports()
    localstack.ensure_stack(pg_port=pg_port, redis_port=redis_port)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "dev.sh"), "running"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["postgres", "redis"]
    assert localstack.running_servers(tmp_path / "nothing-here") == []
