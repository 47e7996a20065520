# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""What the devpi host's service manager and kernel say, for the mcquack.devpi modules.

- Job state: systemd units through one ``systemctl show``, launchd jobs through ``launchctl print``
  (a value with a ``/`` is a launchd service target, any other a systemd unit).
- Who listens on a TCP port: Linux's ``/proc`` (``/proc/net/tcp*`` and each process's ``fd``),
  macOS's ``lsof``; and a process's command line (``ps``).
- Identity: whether the server answering a URL is the devpi of this server-dir, before a password
  or token is sent to it: the service's main process holds the listening socket, and the
  ``uuid`` in ``/+status`` is the one in the server-dir's ``.nodeinfo``.
- A start that cannot succeed: the service crash-looping, or one of devpi-server's fatal start
  errors in its log since the wait began.

Runs on the managed host under Python 3.9 (macOS's system Python): no newer syntax at run time.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

# What `systemctl is-enabled` exits 0 for (systemctl(1)): the unit starts by itself.
_ENABLED = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient")
_NOT_THERE: dict[str, Any] = {"loaded": False, "active": False, "enabled": False, "pid": None}
_SYSTEMD_PROPERTIES = "LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts"

# devpi-server's own words for a start that cannot succeed (it exits, and its service manager
# starts it again, and again): the port is taken, the listen address is not one, the
# server-dir is another database schema's, an option its argument parser refuses.
FATAL_START = (
    "Address already in use",
    "Invalid host/port specified",
    "Incompatible state",
    "cannot run serverdir",
    "devpi-server: error:",
)


def parse_systemctl_show(text: str, count: int) -> list[dict[str, str]]:
    """The property blocks `systemctl show` prints, one per unit in the order asked, separated by
    an empty line (empty when the answer does not fit the count)."""
    blocks: list[dict[str, str]] = []
    for chunk in text.strip("\n").split("\n\n"):
        block = {}
        for line in chunk.splitlines():
            key, _sep, value = line.partition("=")
            block[key] = value
        blocks.append(block)
    return blocks if len(blocks) == count else []


def systemd_states(module: Any, units: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each unit's state, from one `systemctl show` of all of them."""
    found = {name: dict(_NOT_THERE) for name in units}
    systemctl = module.get_bin_path("systemctl")
    if systemctl is None or not units:
        return found
    command = [systemctl, "show", "--property=" + _SYSTEMD_PROPERTIES, "--", *units.values()]
    rc, out, _err = module.run_command(command)
    if rc != 0:
        return found
    blocks = parse_systemctl_show(out, len(units))
    for index, name in enumerate(units if blocks else ()):
        block = blocks[index]
        pid = int(block.get("MainPID") or 0)
        found[name] = {
            "loaded": block.get("LoadState") == "loaded",
            "active": block.get("ActiveState") == "active",
            "enabled": block.get("UnitFileState") in _ENABLED,
            "pid": pid or None,
            # Crash-looping: systemd waits to start it again, or gave up.
            "crashed": block.get("SubState") == "auto-restart"
            or block.get("ActiveState") == "failed",
            "restarts": int(block.get("NRestarts") or 0),
        }
    return found


def parse_launchctl_print(text: str) -> dict[str, Any]:
    """What `launchctl print <target>` says of a loaded job: whether it runs, its pid, how often
    it was started and how its last run ended."""
    state = re.search(r"^\s*state = (.+)$", text, re.M)
    pid = re.search(r"^\s*pid = (\d+)$", text, re.M)
    runs = re.search(r"^\s*runs = (\d+)$", text, re.M)
    last_exit = re.search(r"^\s*last exit code = (-?\d+)", text, re.M)
    active = state is not None and state.group(1).strip() == "running"
    return {
        "loaded": True,
        "active": active,
        "enabled": True,
        "pid": int(pid.group(1)) if pid else None,
        # KeepAlive starts it again after its throttle interval: between, it has exited non-zero.
        "crashed": not active and last_exit is not None and int(last_exit.group(1)) != 0,
        "restarts": int(runs.group(1)) if runs else 0,
    }


def launchd_states(module: Any, targets: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each launchd job's state (`launchctl print` exits 113 for a job that is not loaded)."""
    found = {name: dict(_NOT_THERE) for name in targets}
    launchctl = module.get_bin_path("launchctl")
    if launchctl is None:
        return found
    for name, target in targets.items():
        rc, out, _err = module.run_command([launchctl, "print", target])
        if rc == 0:
            found[name] = parse_launchctl_print(out)
    return found


def job_states(module: Any, jobs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The state of each job: a launchd service target (it has a /) or a systemd unit."""
    return {
        **systemd_states(module, {k: v for k, v in jobs.items() if "/" not in v}),
        **launchd_states(module, {k: v for k, v in jobs.items() if "/" in v}),
    }


# --- Who listens -------------------------------------------------------------------------------


def listening_inodes(port: int, proc: str = "/proc") -> set[str] | None:
    """The inodes of the TCP sockets listening on port (any address), from /proc/net/tcp and
    tcp6; None where there is no /proc."""
    found: set[str] = set()
    seen = False
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", name), encoding="ascii") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        seen = True
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                found.add(fields[9])
    return found if seen else None


def _socket_inodes(pid: int, proc: str = "/proc") -> set[str] | None:
    """The socket inodes a process holds; None when its fds cannot be read (another user's)."""
    directory = os.path.join(proc, str(pid), "fd")
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    inodes = set()
    for name in names:
        try:
            target = os.readlink(os.path.join(directory, name))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def pid_listens(module: Any, pid: int, port: int, proc: str = "/proc") -> bool | None:
    """Whether the process holds a socket listening on port; None when this cannot be told."""
    inodes = listening_inodes(port, proc)
    if inodes is not None:
        held = _socket_inodes(pid, proc)
        return None if held is None else bool(inodes & held)
    lsof = module.get_bin_path("lsof")
    if lsof is None:
        return None
    rc, out, _err = module.run_command(
        [lsof, "-nP", "-a", "-p", str(pid), f"-iTCP:{port}", "-sTCP:LISTEN", "-t"]
    )
    return rc == 0 and str(pid) in out.split()


def port_holders(module: Any, port: int, proc: str = "/proc") -> list[int] | None:
    """The processes listening on port that this account can see; None when it cannot tell."""
    inodes = listening_inodes(port, proc)
    if inodes is not None:
        if not inodes:
            return []
        holders = []
        for name in os.listdir(proc):
            if name.isdigit() and (_socket_inodes(int(name), proc) or set()) & inodes:
                holders.append(int(name))
        return sorted(holders)
    lsof = module.get_bin_path("lsof")
    if lsof is None:
        return None
    _rc, out, _err = module.run_command([lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-t"])
    return sorted({int(word) for word in out.split() if word.isdigit()})


def command_of(module: Any, pid: int) -> str:
    """A process's command line, as ps shows it (empty when it is gone)."""
    ps = module.get_bin_path("ps")
    if ps is None:
        return ""
    rc, out, _err = module.run_command([ps, "-o", "command=", "-p", str(pid)])
    return out.strip() if rc == 0 else ""


def describe_holders(module: Any, port: int) -> str:
    """Who listens on port, for a message: 'PID 123 (python3 -m http.server 3141)'."""
    holders = port_holders(module, port)
    if holders is None:
        return f"a process this host does not name (no /proc and no lsof) listens on port {port}"
    if not holders:
        return f"no process of this account is seen listening on port {port} (another user's?)"
    named = [f"PID {pid} ({command_of(module, pid) or 'gone'})" for pid in holders]
    return f"port {port} is held by " + ", ".join(named)


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


# --- Identity --------------------------------------------------------------------------------


def nodeinfo_uuid(path: str) -> str | None:
    """The uuid a server-dir's .nodeinfo records (None when it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    uuid = info.get("uuid") if isinstance(info, dict) else None
    return uuid if isinstance(uuid, str) else None


def identity_problem(
    module: Any,
    url: str,
    status: dict[str, Any] | None,
    service: str | None = None,
    nodeinfo: str | None = None,
) -> str | None:
    """Why the server answering url is not the devpi of this server-dir (None: it is). service:
    the job that runs devpi (its main process must hold the listening socket); nodeinfo: the
    server-dir's .nodeinfo (its uuid must be the one /+status reports); status: that /+status
    result (None when it could not be read)."""
    port = url_port(url)
    problems = []
    if service:
        state = job_states(module, {"devpi": service})["devpi"]
        pid = state.get("pid")
        if not pid:
            problems.append(f"{service} has no running process")
        elif pid_listens(module, int(pid), port) is False:
            problems.append(f"{service}'s process (PID {pid}) does not listen on port {port}")
    if nodeinfo:
        wanted = nodeinfo_uuid(nodeinfo)
        found = (status or {}).get("uuid")
        if wanted is not None and found != wanted:
            problems.append(
                f"its /+status names server uuid {found!r}, not this server-dir's {wanted!r} "
                f"({nodeinfo})"
                if status is not None
                else "it does not answer /+status as devpi-server does"
            )
    if not problems:
        return None
    return (
        f"Something other than this host's devpi answers {url}: "
        + "; ".join(problems)
        + f"; {describe_holders(module, port)}. No password or token was sent to it."
    )


class LogWatch:
    """What a systemd unit's journal or a log file gained since the watch was made."""

    def __init__(self, module: Any, unit: str | None, path: str | None) -> None:
        self.module, self.unit, self.path = module, unit, path
        self.since = time.time()
        self.offset = 0
        if path:
            try:
                self.offset = os.path.getsize(path)
            except OSError:
                self.offset = 0

    def text(self) -> str:
        """Everything logged since the watch began (empty when the log cannot be read)."""
        if self.unit:
            journalctl = self.module.get_bin_path("journalctl")
            if journalctl is None:
                return ""
            rc, text, _err = self.module.run_command(
                [journalctl, "--unit", self.unit, "--since", f"@{int(self.since)}",
                 "--no-pager", "--output", "cat"]
            )  # fmt: skip
            return str(text) if rc == 0 else ""
        if self.path:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    return f.read().decode("utf-8", "replace")
            except OSError:
                return ""
        return ""

    def newest(self, *words: str) -> str | None:
        """The newest line logged since the watch began that holds one of words."""
        lines = [line.strip() for line in self.text().splitlines() if any(w in line for w in words)]
        return lines[-1] if lines else None


class StartWatch:
    """What tells, while waiting for a (re)started devpi, that the start cannot succeed: its
    service crash-looping (systemd auto-restart or failed, launchd's job exiting non-zero) or
    one of devpi's fatal start errors in its log since the watch began."""

    def __init__(self, module: Any, url: str, service: str | None, log: LogWatch) -> None:
        self.module, self.url, self.service, self.log = module, url, service, log
        state = job_states(module, {"devpi": service})["devpi"] if service else {}
        self.restarts = int(state.get("restarts") or 0)

    def fatal(self) -> str | None:
        """Why the start cannot succeed, or None while it still may."""
        lines = self.log.text().splitlines()
        fatal = [line.strip() for line in lines if any(word in line for word in FATAL_START)]
        crashed = False
        if self.service:
            state = job_states(self.module, {"devpi": self.service})["devpi"]
            crashed = bool(state.get("crashed")) or int(state.get("restarts") or 0) > self.restarts
        if not fatal and not crashed:
            return None
        said = (
            fatal[-1] if fatal else " / ".join(line.strip() for line in lines[-3:] if line.strip())
        )
        what = f"{self.service} keeps exiting" if crashed else "devpi-server cannot start"
        holder = ""
        if any("Address already in use" in line for line in fatal):
            holder = f" ({describe_holders(self.module, url_port(self.url))})"
        return f"{what}: {said or 'see its log'}{holder}"
