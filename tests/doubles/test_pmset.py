# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The `pmset` stand-in answers as pmset does: its format, its arguments, its refusals.

Each test runs tests/doubles/pmset as a subprocess with its own state file
(PMSET_STANDIN_STATE) and compares with the recorded outputs in tests/unit/fixtures/macos/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PMSET = ROOT / "tests" / "doubles" / "pmset"
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "macos"
SYSTEM_PYTHON = "/usr/bin/python3"  # one another user can run, unlike a venv under /root
USAGE = "Usage: pmset <options>\nSee pmset(1) for details: 'man pmset'\n"


class Mac:
    """One test's Mac: a state file and the stand-in to run, by root or by nobody."""

    def __init__(self, directory: Path, command: list[str]) -> None:
        self.state = directory / "state.json"
        self.command = command

    def run(self, *args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            env={**os.environ, "PMSET_STANDIN_STATE": str(self.state)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            preexec_fn=as_nobody if user else None,
        )

    def live(self) -> str:
        result = self.run("-g")
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout

    def write(self, state: dict[str, Any]) -> None:
        self.state.write_text(json.dumps(state))
        self.state.chmod(0o644)


def as_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


@pytest.fixture
def mac(tmp_path: Path) -> Mac:
    return Mac(tmp_path, [sys.executable, str(PMSET)])


@pytest.fixture
def shared_mac() -> Iterator[Mac]:
    """A Mac nobody can reach too: a world-readable directory with its own copy of pmset."""
    directory = Path(tempfile.mkdtemp(prefix="pmset-standin-test-"))
    directory.chmod(0o755)
    pmset = directory / "pmset"
    shutil.copy2(PMSET, pmset)
    pmset.chmod(0o755)
    try:
        yield Mac(directory, [SYSTEM_PYTHON, str(pmset)])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to be root and nobody)")
needs_system_python = pytest.mark.skipif(
    not Path(SYSTEM_PYTHON).exists(), reason=f"needs {SYSTEM_PYTHON}"
)


def test_without_a_state_file_it_is_the_recorded_mac_mini(mac: Mac) -> None:
    assert mac.live() == fixture("pmset-g-mac-mini-sonoma.txt")
    assert mac.run("-g", "live").stdout == mac.live()
    assert mac.run("-g", "LIVE").stdout == mac.live()  # pmset lower-cases its arguments


@pytest.mark.parametrize(
    ("settings", "recorded"),
    [
        ({"sleep": 0}, "pmset-g-mac-mini-set-up.txt"),
        ({"sleep": 0, "autorestart": 0}, "pmset-g-mac-mini-no-autorestart.txt"),
    ],
)
def test_a_state_file_changes_the_settings_in_use(
    mac: Mac, settings: dict[str, Any], recorded: str
) -> None:
    mac.write({"settings": settings})
    assert mac.live() == fixture(recorded)


def test_a_mac_without_autorestart_does_not_show_it(mac: Mac) -> None:
    mac.write({"settings": {"autorestart": None}, "sleep_prevented_by": []})
    text = mac.live()
    assert "autorestart" not in text
    assert " sleep                10\n" in text  # no assertion held: no suffix
    assert mac.run("-a", "autorestart", "1").returncode == 0
    assert "autorestart" not in mac.live()  # pmset accepts it, and still does not show it


def test_assertions_follow_the_sleep_and_displaysleep_lines(mac: Mac) -> None:
    mac.write({"sleep_prevented_by": ["powerd"], "display_sleep_prevented_by": ["Dia"]})
    text = mac.live()
    assert " sleep                10 (sleep prevented by powerd)\n" in text
    assert " displaysleep         10 (display sleep prevented by Dia)\n" in text


@needs_root
def test_root_changes_settings_as_with_pmset_minus_a(mac: Mac) -> None:
    assert mac.run("-a", "sleep", "0").returncode == 0
    assert " sleep                0 (sleep prevented by" in mac.live()
    # Upper case, a -c flag, strtol's base 0 and an on/off setting's non-zero value.
    assert mac.run("-C", "AUTORESTART", "0x0", "womp", "5").returncode == 0
    text = mac.live()
    assert " autorestart          0\n" in text
    assert " womp                 1\n" in text
    assert mac.run("dim", "3", "spindown", "0", "sleep", "015").returncode == 0
    text = mac.live()
    assert " displaysleep         3\n" in text
    assert " disksleep            0\n" in text
    assert " sleep                13 (" in text  # 015 is octal, as strtol reads it


@needs_root
def test_disablesleep_shows_in_the_system_wide_settings(mac: Mac) -> None:
    assert mac.run("disablesleep", "1").returncode == 0
    assert mac.live().startswith(
        "System-wide power settings:\n SleepDisabled\t\t1\nCurrently in use:\n"
    )
    assert mac.run("-a", "disablesleep", "0").returncode == 0
    assert mac.live().startswith("System-wide power settings:\n SleepDisabled\t\t0\n")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-a", "sleep"],
        ["-a", "sleep", "ten"],
        ["-a", "sleep", "-5"],
        ["-a", "autorestart", "1x"],
        ["disablesleep", "0x1"],
        ["-gx"],
        ["-x", "sleep", "0"],
        ["frobnicate", "1"],
    ],
    ids=[
        "no-arguments",
        "missing-value",
        "not-a-number",
        "negative",
        "trailing-garbage",
        "disablesleep-is-decimal",
        "g-with-suffix",
        "unknown-flag",
        "unknown-setting",
    ],
)
def test_usage_errors_print_the_usage_and_exit_1(mac: Mac, args: list[str]) -> None:
    result = mac.run(*args)
    assert (result.returncode, result.stdout, result.stderr) == (1, USAGE, "")
    assert not mac.state.exists()  # nothing changed


def test_an_unknown_getter(mac: Mac) -> None:
    result = mac.run("-g", "frobnicate")
    assert result.returncode == 1
    assert result.stdout == "Error: unhandled argument frobnicate\n" + USAGE


@pytest.mark.parametrize(
    "args",
    [
        ["-g", "cap"],
        ["-g", "batt"],
        ["-g", "custom"],
        ["-g", "assertions"],
        ["sleepnow"],
        ["-a", "hibernatemode", "0"],
        ["schedule", "wake", "01/01/30 00:00:00"],
        ["repeat", "cancel"],
    ],
)
def test_what_pmset_has_but_the_stand_in_does_not(mac: Mac, args: list[str]) -> None:
    result = mac.run(*args)
    assert result.returncode == 160
    assert result.stdout == ""
    assert result.stderr.startswith("pmset stand-in: ")
    assert result.stderr.rstrip().endswith("is not implemented")


def test_a_broken_state_file_is_the_stand_ins_error(mac: Mac) -> None:
    mac.state.write_text("{not json")
    result = mac.run("-g")
    assert result.returncode == 160
    assert result.stderr.startswith(f"pmset stand-in: {mac.state}: ")


@needs_root
@needs_system_python
def test_only_root_changes_settings_but_anyone_reads_them(shared_mac: Mac) -> None:
    mac = shared_mac
    mac.write({"settings": {"sleep": 10}})
    refused = mac.run("-a", "sleep", "0", user=True)
    assert (refused.returncode, refused.stdout) == (1, "'pmset' must be run as root...\n")
    # A system-wide setting: pmset prints the same and carries on, exit status 0.
    system = mac.run("disablesleep", "1", user=True)
    assert (system.returncode, system.stdout) == (0, "'pmset' must be run as root...\n")
    shown = mac.run("-g", user=True)
    assert shown.returncode == 0
    assert " sleep                10 (" in shown.stdout
    assert "SleepDisabled" not in shown.stdout
    assert json.loads(mac.state.read_text()) == {"settings": {"sleep": 10}}
