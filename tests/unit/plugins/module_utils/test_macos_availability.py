# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi's macos_availability: whether a Mac brings devpi back by itself.

The parsers read the recorded outputs in tests/unit/fixtures/macos/. read_availability runs
with a real AnsibleModule (get_bin_path, run_command) against the pmset and fdesetup
stand-ins (tests/doubles/), which print those same recordings, and against commands that are
missing, fail or cannot be executed.
"""

from __future__ import annotations

import json
import plistlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mcquack.devpi.plugins.module_utils.macos_availability import (
    parse_fdesetup_status,
    parse_pmset,
    read_auto_login,
    read_availability,
)

ROOT = Path(__file__).resolve().parents[4]
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "macos"
DOUBLES = ROOT / "tests" / "doubles"

SLEEP_FIX = "sudo pmset -a sleep 0"
AUTORESTART_FIX = "sudo pmset -a autorestart 1"
GUI_FILEVAULT = (
    "FileVault is on: automatic login is disabled, so a gui-domain LaunchAgent does not start "
    "after a reboot until someone logs in; use devpi_launchd_domain: system"
)
AUTO_LOGIN_FIX = (
    "turn on automatic login in System Settings > Users & Groups, or use "
    "devpi_launchd_domain: system"
)


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---------------------------------------------------------------------------------------------
# The parsers, on recorded outputs


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "pmset-g-mac-mini-sonoma.txt",
            {
                "sleeps": True,
                "sleep_minutes": 10,
                "sleep_disabled": False,
                "sleep_prevented_by": ["sharingd", "powerd", "bluetoothd"],
                "autorestart": True,
            },
        ),
        (
            "pmset-g-mac-mini-set-up.txt",
            {
                "sleeps": False,
                "sleep_minutes": 0,
                "sleep_disabled": False,
                "sleep_prevented_by": ["sharingd", "powerd", "bluetoothd"],
                "autorestart": True,
            },
        ),
        (
            "pmset-g-mac-mini-no-autorestart.txt",
            {
                "sleeps": False,
                "sleep_minutes": 0,
                "sleep_disabled": False,
                "sleep_prevented_by": ["sharingd", "powerd", "bluetoothd"],
                "autorestart": False,
            },
        ),
        (
            "pmset-g-ventura-imac20-1.txt",
            {
                "sleeps": True,
                "sleep_minutes": 1,
                "sleep_disabled": False,
                "sleep_prevented_by": ["sharingd", "coreaudiod"],
                "autorestart": "unsupported",
            },
        ),
        (
            "pmset-g-macbook-monterey.txt",
            {
                "sleeps": True,
                "sleep_minutes": 1,
                "sleep_disabled": False,
                "sleep_prevented_by": ["sharingd"],
                "autorestart": "unsupported",
            },
        ),
    ],
)
def test_parse_pmset_on_recorded_macs(name: str, expected: dict[str, Any]) -> None:
    assert parse_pmset(recorded(name)) == expected


def test_sleep_disabled_wins_over_the_sleep_timer() -> None:
    # pmset disablesleep 1: " SleepDisabled\t\t1" under "System-wide power settings:".
    text = recorded("pmset-g-mac-mini-sonoma.txt").replace(
        "System-wide power settings:\n", "System-wide power settings:\n SleepDisabled\t\t1\n"
    )
    facts = parse_pmset(text)
    assert (facts["sleeps"], facts["sleep_minutes"], facts["sleep_disabled"]) == (False, 10, True)
    off = parse_pmset(text.replace("\t\t1", "\t\t0"))
    assert (off["sleeps"], off["sleep_disabled"]) == (True, False)


@pytest.mark.parametrize(
    "text",
    ["", "pmset: command failed\n", "System-wide power settings:\n"],
    ids=["empty", "garbage", "no-settings-in-use"],
)
def test_parse_pmset_without_settings_in_use_knows_nothing(text: str) -> None:
    facts = parse_pmset(text)
    assert facts["sleeps"] == facts["sleep_minutes"] == facts["autorestart"] == "unknown"
    assert facts["sleep_disabled"] == "unknown"


def test_parse_pmset_reads_only_the_sleep_line_as_the_sleep_timer() -> None:
    """displaysleep, disksleep and "Sleep On Power Button" are other settings."""
    text = (
        "Currently in use:\n Sleep On Power Button 1\n displaysleep         10\n"
        " disksleep            10\n"
    )
    assert parse_pmset(text)["sleeps"] == "unknown"
    assert parse_pmset(text + " sleep                0\n")["sleeps"] is False


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("fdesetup-status-on.txt", "on"),
        ("fdesetup-status-off.txt", "off"),
        ("fdesetup-status-on-institutional-key.txt", "on"),
        ("fdesetup-status-encrypting.txt", "encrypting"),
        ("fdesetup-status-decrypting.txt", "decrypting"),
    ],
)
def test_parse_fdesetup_status_on_recorded_answers(name: str, state: str) -> None:
    assert parse_fdesetup_status(recorded(name)) == state


@pytest.mark.parametrize(
    "text", ["", "Error: unable to determine status.\n", "FileVault is Maybe.\n"]
)
def test_parse_fdesetup_status_of_anything_else_is_unknown(text: str) -> None:
    assert parse_fdesetup_status(text) == "unknown"


def test_read_auto_login(tmp_path: Path) -> None:
    path = tmp_path / "com.apple.loginwindow.plist"
    # macOS keeps its preferences as binary property lists.
    path.write_bytes(
        plistlib.dumps(
            {"autoLoginUser": "eblume", "lastUserName": "eblume"}, fmt=plistlib.FMT_BINARY
        )
    )
    assert read_auto_login(str(path)) == (True, "eblume", "")
    path.write_bytes(plistlib.dumps({"lastUserName": "eblume"}, fmt=plistlib.FMT_BINARY))
    assert read_auto_login(str(path)) == (False, None, "")
    assert read_auto_login(str(tmp_path / "absent.plist")) == (False, None, "")

    path.write_bytes(plistlib.dumps({"autoLoginUser": 501}))
    value, user, why = read_auto_login(str(path))
    assert (value, user) == ("unknown", None)
    assert "autoLoginUser" in why
    path.write_text("not a property list")
    value, user, why = read_auto_login(str(path))
    assert (value, user) == ("unknown", None)
    assert why.startswith(f"could not read {path}: ")
    path.write_bytes(plistlib.dumps(["autoLoginUser"]))
    assert read_auto_login(str(path))[0] == "unknown"


# ---------------------------------------------------------------------------------------------
# read_availability: a real AnsibleModule, the stand-ins on PATH


class Mac:
    """A Mac for read_availability: a bin directory on PATH and the stand-ins' state."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = directory
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.loginwindow = directory / "com.apple.loginwindow.plist"
        self.pmset_state = directory / "pmset.json"
        self.fdesetup_state = directory / "fdesetup.json"
        monkeypatch.setenv("PATH", f"{self.bin}:/usr/bin:/bin")
        monkeypatch.setenv("PMSET_STANDIN_STATE", str(self.pmset_state))
        monkeypatch.setenv("FDESETUP_STANDIN_STATE", str(self.fdesetup_state))
        for tool in ("pmset", "fdesetup"):
            self.tool(tool, f'exec "{sys.executable}" "{DOUBLES / tool}" "$@"')

    def tool(self, name: str, body: str) -> None:
        """A command on PATH: a shell script (or any text with its own #! line)."""
        path = self.bin / name
        path.write_text(body if body.startswith("#!") else f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def remove(self, name: str) -> None:
        (self.bin / name).unlink()

    def set_up(
        self,
        *,
        sleep: int = 0,
        autorestart: int | None = 1,
        filevault: str = "off",
        auto_login: str | None = "eblume",
    ) -> None:
        self.pmset_state.write_text(
            json.dumps({"settings": {"sleep": sleep, "autorestart": autorestart}})
        )
        self.fdesetup_state.write_text(json.dumps({"filevault": filevault}))
        preferences: dict[str, Any] = {"lastUserName": "eblume"}
        if auto_login is not None:
            preferences["autoLoginUser"] = auto_login
        self.loginwindow.write_bytes(plistlib.dumps(preferences, fmt=plistlib.FMT_BINARY))

    def read(self, module: Any, domain: str) -> dict[str, Any]:
        result: dict[str, Any] = read_availability(module, domain, str(self.loginwindow))
        assert set(result) == {"facts", "risks"}
        for risk in result["risks"]:
            assert "\n" not in risk, risk  # one warning line each
        json.dumps(result)  # goes through exit_json as it is
        return result


@pytest.fixture
def mac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mac:
    return Mac(tmp_path, monkeypatch)


@pytest.fixture
def module() -> Any:
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


@pytest.mark.parametrize("domain", ["gui", "system"])
def test_a_mac_set_up_to_serve_has_no_risks(mac: Mac, module: Any, domain: str) -> None:
    mac.set_up()
    result = mac.read(module, domain)
    assert result["risks"] == []
    assert result["facts"] == {
        "domain": domain,
        "sleeps": False,
        "sleep_minutes": 0,
        "sleep_disabled": False,
        "sleep_prevented_by": ["sharingd", "powerd", "bluetoothd"],
        "autorestart": True,
        "filevault": "off",
        "auto_login": True,
        "auto_login_user": "eblume",
    }


def test_a_laptop_without_autorestart_is_not_warned_about_it(mac: Mac, module: Any) -> None:
    mac.set_up(autorestart=None)
    result = mac.read(module, "gui")
    assert result["facts"]["autorestart"] == "unsupported"
    assert result["risks"] == []


def test_the_user_domain_never_comes_back_after_a_reboot(mac: Mac, module: Any) -> None:
    mac.set_up(filevault="on", auto_login=None)  # neither matters for user/<uid>
    (risk,) = mac.read(module, "user")["risks"]
    assert "does not come back after a reboot at all" in risk
    assert "use devpi_launchd_domain: system" in risk


@pytest.mark.parametrize(
    ("change", "domain", "names", "fix"),
    [
        ({"sleep": 10}, "gui", "goes to sleep after 10 minutes idle", SLEEP_FIX),
        ({"sleep": 1}, "system", "goes to sleep after 1 minute idle (held off", SLEEP_FIX),
        (
            {"autorestart": 0},
            "gui",
            "does not start again after a power failure",
            AUTORESTART_FIX,
        ),
        (
            {"autorestart": 0},
            "system",
            "does not start again after a power failure",
            AUTORESTART_FIX,
        ),
        ({"auto_login": None}, "gui", "Automatic login is off", AUTO_LOGIN_FIX),
        ({"filevault": "on"}, "gui", GUI_FILEVAULT, GUI_FILEVAULT),
        ({"filevault": "encrypting"}, "gui", GUI_FILEVAULT, GUI_FILEVAULT),
        ({"filevault": "decrypting"}, "gui", "decryption in progress", "system"),
        ({"filevault": "on"}, "system", "FileVault unlock screen", "sudo fdesetup disable"),
    ],
    ids=[
        "sleeps-gui",
        "sleeps-system",
        "no-autorestart-gui",
        "no-autorestart-system",
        "no-auto-login",
        "filevault-on",
        "filevault-encrypting",
        "filevault-decrypting",
        "filevault-on-system",
    ],
)
def test_each_risk_is_one_line_naming_the_fix(
    mac: Mac, module: Any, change: dict[str, Any], domain: str, names: str, fix: str
) -> None:
    mac.set_up(**change)
    (risk,) = mac.read(module, domain)["risks"]
    assert names in risk
    assert fix in risk


def test_a_mac_with_every_risk_warns_of_each(mac: Mac, module: Any) -> None:
    mac.set_up(sleep=10, autorestart=0, filevault="on", auto_login=None)
    result = mac.read(module, "gui")
    facts = result["facts"]
    assert (facts["sleeps"], facts["autorestart"], facts["filevault"]) == (True, False, "on")
    assert (facts["auto_login"], facts["auto_login_user"]) == (False, None)
    risks = result["risks"]
    assert len(risks) == 3  # FileVault on is the reason there is no automatic login
    assert SLEEP_FIX in risks[0]
    assert "(held off right now only by sharingd, powerd, bluetoothd)" in risks[0]
    assert AUTORESTART_FIX in risks[1]
    assert risks[2] == GUI_FILEVAULT


@pytest.mark.parametrize("domain", ["gui", "system"])
def test_missing_commands_are_unknown_facts_not_failures(
    mac: Mac, module: Any, domain: str
) -> None:
    mac.set_up()
    mac.remove("pmset")
    mac.remove("fdesetup")
    result = mac.read(module, domain)
    facts = result["facts"]
    assert facts["sleeps"] == facts["autorestart"] == facts["filevault"] == "unknown"
    assert facts["auto_login"] is True  # read from the file, not from a command
    risks = result["risks"]
    assert len(risks) == 3
    assert risks[0].startswith("Could not tell whether the Mac goes to sleep (pmset not found)")
    assert SLEEP_FIX in risks[0]
    assert risks[1].startswith("Could not tell whether the Mac starts again after a power")
    assert AUTORESTART_FIX in risks[1]
    assert risks[2].startswith("Could not tell whether FileVault is on (fdesetup not found)")


ToolMaker = Callable[[Mac], None]


def failing(mac: Mac) -> None:
    mac.tool("pmset", 'echo "pmset: internal error" >&2; exit 1')
    mac.tool("fdesetup", 'echo "Error: unable to determine status." >&2; exit 99')


def unexecutable(mac: Mac) -> None:
    # The kernel cannot run these: run_command raises OSError, which must not escape.
    mac.tool("pmset", "#!/nonexistent/interpreter\n")
    mac.tool("fdesetup", "#!/nonexistent/interpreter\n")


def garbled(mac: Mac) -> None:
    mac.tool("pmset", 'echo "Usage: pmset <options>"')
    mac.tool("fdesetup", 'echo "FileVault is Maybe."')


@pytest.mark.parametrize(
    ("break_tools", "pmset_why", "fdesetup_why"),
    [
        (failing, "pmset -g exited 1: pmset: internal error", "fdesetup status exited 99: Error"),
        (unexecutable, "pmset could not run: ", "fdesetup could not run: "),
        (garbled, "pmset -g shows no sleep setting", "fdesetup status said 'FileVault is Maybe.'"),
    ],
    ids=["exit-status", "cannot-execute", "unexpected-output"],
)
def test_commands_that_fail_are_unknown_facts_not_failures(
    mac: Mac, module: Any, break_tools: ToolMaker, pmset_why: str, fdesetup_why: str
) -> None:
    mac.set_up()
    break_tools(mac)
    result = mac.read(module, "gui")
    facts = result["facts"]
    assert facts["sleeps"] == facts["autorestart"] == facts["filevault"] == "unknown"
    risks = result["risks"]
    assert len(risks) == 3
    assert f"({pmset_why}" in risks[0]
    assert "Could not tell whether FileVault is on (" in risks[2]
    assert fdesetup_why in risks[2]


def test_an_unreadable_loginwindow_file_is_an_unknown_fact(mac: Mac, module: Any) -> None:
    mac.set_up()
    mac.loginwindow.write_text("garbage")
    result = mac.read(module, "gui")
    assert result["facts"]["auto_login"] == "unknown"
    (risk,) = result["risks"]
    assert risk.startswith("Could not tell whether automatic login is on (could not read ")
    assert "System Settings > Users & Groups" in risk


class Recording:
    """The real module, with a record of how run_command was asked to behave."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls: list[dict[str, Any]] = []

    def get_bin_path(self, arg: str) -> str | None:
        path: str | None = self.module.get_bin_path(arg)
        return path

    def run_command(self, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        self.calls.append(kwargs)
        result: tuple[int, str, str] = self.module.run_command(args, **kwargs)
        return result


def test_run_command_is_asked_to_raise_rather_than_fail_the_module(mac: Mac, module: Any) -> None:
    """With handle_exceptions=True, AnsibleModule.run_command answers an OSError with
    fail_json, which ends the module; read_availability must get the exception instead."""
    mac.set_up()
    unexecutable(mac)
    recording = Recording(module)
    result = mac.read(recording, "gui")
    assert [call.get("handle_exceptions") for call in recording.calls] == [False, False]
    assert result["facts"]["sleeps"] == "unknown"
