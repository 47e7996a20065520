# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Whether a Mac will bring devpi back by itself: read, never changed, and told as risks.

Runs on the managed Mac (Python 3.9+, standard library only). It reads, without changing
anything: whether the Mac goes to sleep when idle and whether it starts again after a power
failure (``pmset -g``), whether FileVault is on (``fdesetup status``) and whether automatic
login is set (``autoLoginUser`` in ``/Library/Preferences/com.apple.loginwindow.plist``, read
with plistlib). Nothing here fails: a command that is missing or fails, or a file that cannot
be read, becomes the fact ``"unknown"`` and a risk line that says what could not be checked.

API::

    read_availability(module, domain, loginwindow_plist=LOGINWINDOW_PLIST)
        -> {"facts": {...}, "risks": [str, ...]}

``module`` is an AnsibleModule, or anything with its ``get_bin_path(name)`` and
``run_command(argv, handle_exceptions=False)``; ``domain`` is devpi_launchd_domain: ``gui``,
``user`` or ``system``. The facts (JSON-friendly):

    domain             the domain given
    sleeps             True, False or "unknown": the Mac goes to sleep when idle (its idle
                       sleep timer is not 0 and sleep is not disabled with pmset disablesleep)
    sleep_minutes      the idle sleep timer in minutes (0: never), or "unknown"
    sleep_disabled     True/False (pmset's system-wide SleepDisabled), or "unknown"
    sleep_prevented_by the processes holding sleep off right now ("sleep prevented by ...");
                       they come and go, so they do not make a sleeping Mac safe
    autorestart        True, False, "unsupported" (pmset shows no autorestart setting on this
                       Mac, e.g. a laptop) or "unknown": starts again after a power failure
    filevault          "on", "off", "encrypting", "decrypting" or "unknown"
    auto_login         True, False or "unknown": a user is logged in automatically at boot
    auto_login_user    that user's short name, or None

``risks`` holds one line per risk, each naming the risk and its fix, for the run's warnings;
a Mac set up to serve unattended in that domain has none. Which facts are risks depends on
the domain: gui needs automatic login and FileVault off; user never comes back after a
reboot; system needs FileVault off to come back after a power failure; all need the Mac awake
and, where the Mac offers it, autorestart.

The parsers ``parse_pmset``, ``parse_fdesetup_status`` and ``read_auto_login`` are public for
tests. Output formats: ``pmset -g`` prints "System-wide power settings:" (then
" SleepDisabled\\t\\t1" when set), "Currently in use:" and one " %-20s %d" line per setting,
the sleep line followed by " (sleep prevented by a, b)" while processes hold assertions
(pmset.m in apple-oss-distributions/PowerManagement); ``fdesetup status`` prints "FileVault is
On." or "FileVault is Off.", then during a conversion "Encryption in progress: ..." or
"Decryption in progress: ...", and other lines such as "FileVault master keychain appears to be
installed.". Recorded outputs and their sources are in tests/unit/fixtures/macos/.
"""

from __future__ import annotations

import plistlib
import re
from typing import Any, Protocol

LOGINWINDOW_PLIST = "/Library/Preferences/com.apple.loginwindow.plist"
DOMAINS = ("gui", "user", "system")
UNKNOWN = "unknown"

_SLEEP = re.compile(r"^\s*sleep\s+(\d+)(.*)$", re.MULTILINE)
_AUTORESTART = re.compile(r"^\s*autorestart\s+(\d+)", re.MULTILINE)
_SLEEP_DISABLED = re.compile(r"^\s*SleepDisabled\s+(\d+)", re.MULTILINE)
_PREVENTED = re.compile(r"\(sleep prevented by ([^)]*)\)")
_FILEVAULT = re.compile(r"^FileVault is (On|Off)\b", re.MULTILINE)


class ModuleLike(Protocol):
    """What read_availability uses of an AnsibleModule."""

    def get_bin_path(self, arg: str) -> str | None: ...

    def run_command(
        self, args: list[str], handle_exceptions: bool = ...
    ) -> tuple[int, str, str]: ...


def parse_pmset(text: str) -> dict[str, Any]:
    """The facts in ``pmset -g`` output: sleeps, sleep_minutes, sleep_disabled,
    sleep_prevented_by, autorestart (see the module docstring for their values)."""
    facts: dict[str, Any] = {
        "sleeps": UNKNOWN,
        "sleep_minutes": UNKNOWN,
        "sleep_disabled": UNKNOWN,
        "sleep_prevented_by": [],
        "autorestart": UNKNOWN,
    }
    if "Currently in use:" not in text:
        return facts
    disabled = _SLEEP_DISABLED.search(text)
    facts["sleep_disabled"] = bool(disabled and int(disabled.group(1)))
    sleep = _SLEEP.search(text)
    if sleep:
        minutes = int(sleep.group(1))
        facts["sleep_minutes"] = minutes
        facts["sleeps"] = minutes != 0 and not facts["sleep_disabled"]
        prevented = _PREVENTED.search(sleep.group(2))
        if prevented:
            names = [name.strip() for name in prevented.group(1).split(",")]
            facts["sleep_prevented_by"] = [name for name in names if name]
    elif facts["sleep_disabled"]:
        facts["sleeps"] = False
    autorestart = _AUTORESTART.search(text)
    facts["autorestart"] = bool(int(autorestart.group(1))) if autorestart else "unsupported"
    return facts


def parse_fdesetup_status(text: str) -> str:
    """FileVault's state from ``fdesetup status``: on, off, encrypting, decrypting or unknown."""
    lowered = text.lower()
    if "encryption in progress" in lowered:
        return "encrypting"
    if "decryption in progress" in lowered:
        return "decrypting"
    state = _FILEVAULT.search(text)
    if state:
        return "on" if state.group(1) == "On" else "off"
    return UNKNOWN


def read_auto_login(path: str = LOGINWINDOW_PLIST) -> tuple[bool | str, str | None, str]:
    """(auto_login, auto_login_user, why unknown) from the loginwindow preferences.

    A missing file means nothing is set there. The key holds the user's short name while
    automatic login is on (System Settings > Users & Groups writes it; it is removed when
    automatic login is turned off).
    """
    try:
        with open(path, "rb") as handle:
            data = plistlib.load(handle)
    except FileNotFoundError:
        return False, None, ""
    except Exception as exc:  # unreadable or not a property list: say so, never fail
        return UNKNOWN, None, f"could not read {path}: {exc}"
    if not isinstance(data, dict):
        return UNKNOWN, None, f"{path} is not a dictionary"
    user = data.get("autoLoginUser")
    if user is None or user == "":
        return False, None, ""
    if not isinstance(user, str):
        return UNKNOWN, None, f"autoLoginUser in {path} is not a string"
    return True, user, ""


def _run(module: ModuleLike, tool: str, *args: str) -> tuple[str | None, str]:
    """(stdout, "") when the tool exits 0, else (None, why)."""
    try:
        executable = module.get_bin_path(tool)
        if not executable:
            return None, f"{tool} not found"
        rc, out, err = module.run_command([executable, *args], handle_exceptions=False)
    except Exception as exc:  # the module must never fail on a probe
        return None, f"{tool} could not run: {exc}"
    if rc != 0:
        detail = (err or out or "").strip().splitlines()
        return None, f"{tool} {' '.join(args)} exited {rc}" + (f": {detail[0]}" if detail else "")
    return out, ""


def read_availability(
    module: ModuleLike, domain: str, loginwindow_plist: str = LOGINWINDOW_PLIST
) -> dict[str, Any]:
    """Facts about whether the Mac brings devpi back by itself, and the risks they show.

    Returns {"facts": {...}, "risks": [...]}; see the module docstring. Never raises.
    """
    pmset_out, pmset_why = _run(module, "pmset", "-g")
    facts: dict[str, Any] = {"domain": domain}
    facts.update(parse_pmset(pmset_out or ""))
    if pmset_out is not None and facts["sleeps"] == UNKNOWN:
        pmset_why = "pmset -g shows no sleep setting"
    if pmset_out is None:
        autorestart_why = pmset_why
    else:
        autorestart_why = "pmset -g shows no settings in use"

    fdesetup_out, fdesetup_why = _run(module, "fdesetup", "status")
    facts["filevault"] = parse_fdesetup_status(fdesetup_out or "")
    if fdesetup_out is not None and facts["filevault"] == UNKNOWN:
        first = fdesetup_out.strip().splitlines()
        fdesetup_why = "fdesetup status said " + (repr(first[0]) if first else "nothing")

    auto_login, auto_login_user, auto_login_why = read_auto_login(loginwindow_plist)
    facts["auto_login"] = auto_login
    facts["auto_login_user"] = auto_login_user

    risks: list[str] = []
    if domain == "user":
        risks.append(
            "devpi_launchd_domain: user - macOS does not re-create user/<uid> jobs after a "
            "reboot, so devpi does not come back after a reboot at all until the role runs "
            "again; use devpi_launchd_domain: system (or gui with automatic login)"
        )
    risks += _sleep_risks(facts, pmset_why)
    risks += _autorestart_risks(facts, autorestart_why)
    if domain == "gui":
        risks += _gui_risks(facts, fdesetup_why, auto_login_why)
    elif domain == "system":
        risks += _system_risks(facts, fdesetup_why)
    return {"facts": facts, "risks": risks}


def _sleep_risks(facts: dict[str, Any], why: str) -> list[str]:
    if facts["sleeps"] == UNKNOWN:
        return [
            f"Could not tell whether the Mac goes to sleep ({why}); a sleeping Mac does not "
            "answer for devpi: check pmset -g and, unless its sleep line is 0, run "
            "sudo pmset -a sleep 0"
        ]
    if facts["sleeps"] is not True:
        return []
    minutes = facts["sleep_minutes"]
    held = ""
    if facts["sleep_prevented_by"]:
        held = f" (held off right now only by {', '.join(facts['sleep_prevented_by'])})"
    return [
        f"The Mac goes to sleep after {minutes} minute{'' if minutes == 1 else 's'} idle{held}, "
        "and a sleeping Mac does not answer for devpi; fix: sudo pmset -a sleep 0"
    ]


def _autorestart_risks(facts: dict[str, Any], why: str) -> list[str]:
    if facts["autorestart"] == UNKNOWN:
        return [
            f"Could not tell whether the Mac starts again after a power failure ({why}); "
            "check pmset -g and run sudo pmset -a autorestart 1"
        ]
    if facts["autorestart"] is False:
        return [
            "The Mac does not start again after a power failure (pmset autorestart 0), so "
            "devpi stays down until someone presses the power button; fix: "
            "sudo pmset -a autorestart 1"
        ]
    return []


def _gui_risks(facts: dict[str, Any], fdesetup_why: str, auto_login_why: str) -> list[str]:
    filevault = facts["filevault"]
    if filevault in ("on", "encrypting"):
        return [
            "FileVault is on: automatic login is disabled, so a gui-domain LaunchAgent does "
            "not start after a reboot until someone logs in; use devpi_launchd_domain: system"
        ]
    if filevault == "decrypting":
        return [
            "FileVault is being turned off (decryption in progress): until it finishes "
            "automatic login stays disabled and a gui-domain LaunchAgent does not start after "
            "a reboot until someone logs in; let it finish and turn on automatic login, or use "
            "devpi_launchd_domain: system"
        ]
    risks = []
    if filevault == UNKNOWN:
        risks.append(
            f"Could not tell whether FileVault is on ({fdesetup_why}); with FileVault on, "
            "automatic login is disabled and a gui-domain LaunchAgent waits for a login after "
            "every reboot: check fdesetup status, or use devpi_launchd_domain: system"
        )
    if facts["auto_login"] == UNKNOWN:
        risks.append(
            f"Could not tell whether automatic login is on ({auto_login_why}); without it a "
            "gui-domain LaunchAgent waits for a login after every reboot: check System "
            "Settings > Users & Groups, or use devpi_launchd_domain: system"
        )
    elif facts["auto_login"] is False:
        risks.append(
            "Automatic login is off, so after a reboot devpi's gui-domain LaunchAgent does not "
            "start until someone logs in at the Mac; turn on automatic login in System "
            "Settings > Users & Groups, or use devpi_launchd_domain: system"
        )
    return risks


def _system_risks(facts: dict[str, Any], fdesetup_why: str) -> list[str]:
    filevault = facts["filevault"]
    if filevault == UNKNOWN:
        return [
            f"Could not tell whether FileVault is on ({fdesetup_why}); with FileVault on, the "
            "Mac waits at the FileVault unlock screen after a power failure or restart and no "
            "LaunchDaemon starts: check fdesetup status"
        ]
    if filevault in ("on", "encrypting", "decrypting"):
        state = "is on" if filevault != "decrypting" else "is still decrypting"
        return [
            f"FileVault {state}: after a power failure or a restart the Mac waits at the "
            "FileVault unlock screen until someone enters a password, and devpi's "
            "LaunchDaemon does not start before that; turn FileVault off "
            "(sudo fdesetup disable) if the Mac must come back unattended, and restart on "
            "purpose with sudo fdesetup authrestart"
        ]
    return []
