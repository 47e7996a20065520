# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The `fdesetup` stand-in answers `status` and `isactive` as fdesetup does, and nothing else.

Each test runs tests/doubles/fdesetup as a subprocess with its own state file
(FDESETUP_STANDIN_STATE) and compares with the recorded outputs in tests/unit/fixtures/macos/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FDESETUP = ROOT / "tests" / "doubles" / "fdesetup"
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "macos"
SYSTEM_PYTHON = "/usr/bin/python3"


def run(
    state: Path, *args: str, command: list[str] | None = None, user: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or [sys.executable, str(FDESETUP)]), *args],
        env={**os.environ, "FDESETUP_STANDIN_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=as_nobody if user else None,
    )


def as_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def with_state(tmp_path: Path, **state: Any) -> Path:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    return path


@pytest.mark.parametrize(
    ("state", "recorded", "active"),
    [
        ({}, "fdesetup-status-off.txt", (1, "false\n")),
        ({"filevault": "off"}, "fdesetup-status-off.txt", (1, "false\n")),
        ({"filevault": "on"}, "fdesetup-status-on.txt", (0, "true\n")),
        (
            {"filevault": "on", "institutional_key": True},
            "fdesetup-status-on-institutional-key.txt",
            (0, "true\n"),
        ),
        ({"filevault": "encrypting"}, "fdesetup-status-encrypting.txt", (2, "true\n")),
        (
            {"filevault": "decrypting", "percent": "25.0"},
            "fdesetup-status-decrypting.txt",
            (2, "false\n"),
        ),
    ],
    ids=["default", "off", "on", "institutional-key", "encrypting", "decrypting"],
)
def test_status_and_isactive(
    tmp_path: Path, state: dict[str, Any], recorded: str, active: tuple[int, str]
) -> None:
    path = with_state(tmp_path, **state) if state else tmp_path / "absent.json"
    status = run(path, "status")
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout == (FIXTURES / recorded).read_text()
    isactive = run(path, "isactive")
    assert (isactive.returncode, isactive.stdout) == active


def test_the_percentage_is_the_states(tmp_path: Path) -> None:
    path = with_state(tmp_path, filevault="encrypting", percent="3.7")
    assert run(path, "status").stdout.splitlines()[1] == (
        "Encryption in progress: Percent completed = 3.7"
    )


@pytest.mark.parametrize(
    "args",
    [[], ["enable"], ["disable"], ["list"], ["authrestart"], ["status", "-extended"], ["frob"]],
)
def test_everything_else_is_the_stand_ins_limit(tmp_path: Path, args: list[str]) -> None:
    result = run(tmp_path / "absent.json", *args)
    assert result.returncode == 160
    assert result.stdout == ""
    assert result.stderr.startswith("fdesetup stand-in: ")


@pytest.mark.parametrize(
    "content", ["{broken", "[]", json.dumps({"filevault": "maybe"})], ids=["json", "array", "value"]
)
def test_a_broken_state_file_is_the_stand_ins_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    result = run(path, "status")
    assert result.returncode == 160
    assert result.stderr.startswith(f"fdesetup stand-in: {path}: ")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to become nobody)")
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason=f"needs {SYSTEM_PYTHON}")
def test_status_needs_no_root() -> None:
    """fdesetup(8): some status related commands can be run from a non-root session."""
    directory = Path(tempfile.mkdtemp(prefix="fdesetup-standin-test-"))
    try:
        directory.chmod(0o755)
        copy = directory / "fdesetup"
        shutil.copy2(FDESETUP, copy)
        state = with_state(directory, filevault="on")
        state.chmod(0o644)
        result = run(state, "status", command=[SYSTEM_PYTHON, str(copy)], user=True)
        assert (result.returncode, result.stdout) == (0, "FileVault is On.\n")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
