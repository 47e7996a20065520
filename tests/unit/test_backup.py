# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The backup job: its templates rendered by Ansible with the role's defaults, the backup script
run against a real devpi-server 6.20.3 server-dir, and the launchd path (the backup agent set
up, run on demand and removed by the role's own tasks) against the launchctl stand-in."""

from __future__ import annotations

import os
import plistlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    devpi_server_venv,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]
LAUNCHCTL = ROOT / "tests" / "doubles" / "launchctl"


def render(tmp_path: Path, **extra: Any) -> Path:
    """Render the backup templates into tmp_path (made if need be) with the given role variables."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = run_playbook("render_backup_templates.yml", {"render_dir": str(tmp_path), **extra})
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path


# --- Templates --------------------------------------------------------------------------------


def test_the_backup_agent_is_a_calendar_job_with_its_own_log(tmp_path: Path) -> None:
    out = render(
        tmp_path,
        devpi_service_manager="launchd",
        devpi_base_dir="/Users/eblume/devpi",
        devpi_launchd_agents_dir="/Users/eblume/Library/LaunchAgents",
        devpi_launchd_stdout_path="/Users/eblume/Library/Logs/mcquack.devpi.out.log",
        devpi_launchd_stderr_path="/Users/eblume/Library/Logs/mcquack.devpi.err.log",
    )
    job = plistlib.loads((out / "devpi-backup.plist").read_bytes())
    assert job["Label"] == "mcquack.eblume.devpi.backup"
    assert job["ProgramArguments"] == ["/Users/eblume/devpi/devpi-backup"]
    assert job["StartCalendarInterval"] == {"Hour": 3, "Minute": 17}
    for key in ("Hour", "Minute"):
        value = job["StartCalendarInterval"][key]
        assert isinstance(value, int) and not isinstance(value, bool)
    assert job["StandardOutPath"] == job["StandardErrorPath"]
    assert job["StandardErrorPath"] == "/Users/eblume/Library/Logs/mcquack.devpi.backup.log"
    assert job["WorkingDirectory"] == "/Users/eblume/devpi"
    # Not a daemon: launchd starts it at the time, not at load, and does not restart it.
    assert "KeepAlive" not in job and "RunAtLoad" not in job
    assert isinstance(job["Nice"], int) and not isinstance(job["Nice"], bool)
    assert job["LowPriorityIO"] is True
    assert job["EnvironmentVariables"]["LANG"].endswith("UTF-8")


def test_without_an_hour_the_backup_runs_every_hour(tmp_path: Path) -> None:
    out = render(tmp_path, devpi_backup_schedule={"minute": 5})
    assert "OnCalendar=*-*-* *:05:00" in (out / "devpi-backup.timer").read_text().splitlines()
    job = plistlib.loads((out / "devpi-backup.plist").read_bytes())
    assert job["StartCalendarInterval"] == {"Minute": 5}


def test_the_systemd_units_run_the_script_hardened_on_a_persistent_timer(tmp_path: Path) -> None:
    out = render(
        tmp_path, devpi_service_manager="systemd", devpi_backup_schedule={"hour": 23, "minute": 0}
    )
    service = (out / "devpi-backup.service").read_text().splitlines()
    for line in (
        "Type=oneshot",
        "User=devpi",
        "Group=devpi",
        "ExecStart=/var/lib/devpi/devpi-backup",
        "UMask=0077",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=true",
        "ReadWritePaths=/var/lib/devpi/server-dir /var/lib/devpi/backups",
    ):
        assert line in service, line
    # A oneshot started by its timer: nothing to install, nothing to restart.
    assert not any(line.startswith(("Restart=", "WantedBy=")) for line in service)
    timer = (out / "devpi-backup.timer").read_text().splitlines()
    for line in (
        "OnCalendar=*-*-* 23:00:00",
        "Persistent=true",
        "Unit=devpi-backup.service",
        "WantedBy=timers.target",
    ):
        assert line in timer, line


def test_the_script_is_posix_sh_with_the_role_settings(tmp_path: Path) -> None:
    out = render(tmp_path, devpi_backup_keep=3, devpi_backup_include_mirrored_files=True)
    script = (out / "devpi-backup").read_text()
    assert script.startswith("#!/bin/sh\n")
    assert "\nkeep=3\n" in script
    assert "\nexport_options=--include-mirrored-files\n" in script
    assert "\nbackup_dir=/var/lib/devpi/backups\n" in script
    subprocess.run(["sh", "-n", str(out / "devpi-backup")], check=True)
    default = render(tmp_path / "default")
    assert "\nexport_options=\n" in (default / "devpi-backup").read_text()


# --- Input checks (tasks/validate.yml and the argument specs) --------------------------------------


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        ({"devpi_backup_keep": 0}, "devpi_backup_keep must be at least 1, got 0"),
        (
            {"devpi_backup_schedule": {"hour": 24, "minute": 0}},
            "devpi_backup_schedule must have a minute",
        ),
        ({"devpi_backup_schedule": {"minute": 60}}, "devpi_backup_schedule must have a minute"),
        ({"devpi_backup_schedule": {"hour": 3}}, "missing required arguments: minute"),
        ({"devpi_backup_dir": "backups"}, "These must be absolute paths: devpi_backup_dir"),
        (
            {"devpi_backup_dir": "/var/lib/devpi/server-dir/backups"},
            "devpi_backup_dir must not be inside devpi_server_dir",
        ),
        (
            {"devpi_restore_from": "devpi-export-1"},
            "devpi_restore_from must be empty or an absolute path",
        ),
    ],
)
def test_a_bad_backup_or_restore_value_is_refused_by_name(
    role_vars: dict[str, Any], message: str
) -> None:
    result = run_playbook("validate_inputs.yml", role_vars)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout


def test_the_backup_values_a_user_would_set_pass() -> None:
    result = run_playbook(
        "validate_inputs.yml",
        {
            "devpi_backup_enabled": True,
            "devpi_backup_schedule": {"minute": 30},
            "devpi_backup_dir": "/srv/devpi-backups",
            "devpi_restore_from": "/srv/restore/devpi-export-20261201T031700Z",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- The script, against a real server-dir ----------------------------------------------------


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised devpi-server 6.20.3 server-dir with root and its root/pypi."""
    venv = devpi_server_venv()
    path = tmp_path_factory.mktemp("server") / "server-dir"
    subprocess.run(
        [str(venv / "bin" / "devpi-init"), "--serverdir", str(path)],
        env={**os.environ, "DEVPISERVER_ROOT_PASSWD": "root-pw"},
        check=True,
        capture_output=True,
    )
    return path


def script(tmp_path: Path, server_dir: Path, **extra: Any) -> tuple[Path, Path]:
    """The rendered script for this server-dir, and its backup directory (made, 0700)."""
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    out = render(
        tmp_path / "rendered",
        devpi_venv_dir=str(devpi_server_venv()),
        devpi_server_dir=str(server_dir),
        devpi_backup_dir=str(backups),
        **extra,
    )
    return out / "devpi-backup", backups


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(path)], capture_output=True, text=True, timeout=300, check=False)


def test_each_run_keeps_a_checked_export_and_prunes_beyond_keep(
    tmp_path: Path, server_dir: Path
) -> None:
    path, backups = script(tmp_path, server_dir, devpi_backup_keep=2)
    made = []
    for _run in range(3):
        result = run(path)
        assert result.returncode == 0, result.stdout + result.stderr
        wrote = re.search(
            r"^devpi-backup: wrote (\S+) \(\d+ KiB, fsck: total of \d+ files\) in \d+ s$",
            result.stdout,
            re.M,
        )
        assert wrote, result.stdout
        made.append(wrote.group(1))
        time.sleep(1)  # a new second, a new name
    assert sorted(str(p) for p in backups.iterdir()) == made[1:]
    assert f"devpi-backup: removed {made[0]} (keeping 2)" in result.stdout
    for export in made[1:]:
        assert (Path(export) / "dataindex.json").is_file()
        assert Path(export).stat().st_mode & 0o077 == 0


def test_a_failed_run_says_why_and_leaves_the_exports_alone(
    tmp_path: Path, server_dir: Path
) -> None:
    path, backups = script(tmp_path, server_dir)
    assert run(path).returncode == 0
    before = sorted(backups.iterdir())
    broken = path.with_name("broken")
    broken.write_text(
        path.read_text().replace(f"server_dir={server_dir}", f"server_dir={server_dir}.gone")
    )
    broken.chmod(0o755)
    result = run(broken)
    assert result.returncode == 1
    assert (
        result.stderr == f"devpi-backup: FAILED: the server-dir {server_dir}.gone does not exist\n"
    )
    # devpi-export itself failing: a server-dir that is not devpi's.
    (tmp_path / "empty").mkdir()
    broken.write_text(
        path.read_text().replace(f"server_dir={server_dir}", f"server_dir={tmp_path / 'empty'}")
    )
    result = run(broken)
    assert result.returncode == 1
    assert "devpi-backup: FAILED: devpi-export of" in result.stderr
    assert "contains no devpi-server data" in result.stderr
    assert sorted(backups.iterdir()) == before


# --- launchd, through the role's tasks, against the launchctl stand-in ------------------------


class LaunchdWorld:
    def __init__(self, directory: Path, server_dir: Path) -> None:
        self.dir = directory
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        (bin_dir / "launchctl").symlink_to(LAUNCHCTL)
        self.env = {
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
            "LAUNCHCTL_STANDIN_STATE": str(directory / "state"),
        }
        self.label = "test.mcquack.devpi"
        self.target = f"gui/{os.geteuid()}/{self.label}.backup"
        base = directory / "devpi"
        self.plist = directory / "LaunchAgents" / f"{self.label}.backup.plist"
        self.log = directory / "Logs" / "mcquack.devpi.backup.log"
        self.backups = base / "backups"
        self.vars: dict[str, Any] = {
            "devpi_service_manager": "launchd",
            "devpi_launchd_label": self.label,
            "devpi_base_dir": str(base),
            "devpi_venv_dir": str(devpi_server_venv()),
            "devpi_server_dir": str(server_dir),
            "devpi_launchd_agents_dir": str(directory / "LaunchAgents"),
            "devpi_launchd_stdout_path": str(directory / "Logs" / "mcquack.devpi.out.log"),
            "devpi_launchd_stderr_path": str(directory / "Logs" / "mcquack.devpi.err.log"),
            "devpi_listen_port": free_port(),  # nothing answers: the probe says so, that is all
            "devpi_root_password": "root-pw",
            "devpi_backup_enabled": True,
            "devpi_backup_keep": 1,
        }
        for sub in ("LaunchAgents", "Logs"):
            (directory / sub).mkdir()
        base.mkdir(mode=0o750)

    def converge(self, **extra: Any) -> subprocess.CompletedProcess[str]:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            result: subprocess.CompletedProcess[str] = run_playbook(
                "backup_launchd.yml", {**self.vars, **extra}
            )
            return result
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def launchctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(LAUNCHCTL), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def clean(self) -> None:
        if self.launchctl("print", self.target).returncode == 0:
            self.launchctl("bootout", self.target)
            for _poll in range(100):
                if self.launchctl("print", self.target).returncode == 113:
                    break
                time.sleep(0.1)


@pytest.fixture
def launchd(tmp_path: Path, server_dir: Path) -> Iterator[LaunchdWorld]:
    world = LaunchdWorld(tmp_path, server_dir)
    try:
        yield world
    finally:
        world.clean()


def changed(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"^localhost\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.M)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


@pytest.mark.skipif(sys.platform != "linux", reason="the launchctl stand-in needs Linux")
def test_the_role_loads_runs_reloads_and_removes_the_backup_agent(launchd: LaunchdWorld) -> None:
    first = launchd.converge()
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Load from its plist {launchd.target}" in first.stdout
    printed = launchd.launchctl("print", launchd.target)
    assert printed.returncode == 0, printed.stderr
    # Loaded, and not started: a calendar job without RunAtLoad waits for its time.
    assert "state = not running" in printed.stdout and "runs = 0" in printed.stdout
    assert plistlib.loads(launchd.plist.read_bytes())["StartCalendarInterval"] == {
        "Hour": 3,
        "Minute": 17,
    }

    again = launchd.converge()
    assert again.returncode == 0 and changed(again) == 0, again.stdout

    # tasks_from: backup - kickstart, wait until launchd says it ran, report the export.
    now = launchd.converge(run_backup=True)
    assert now.returncode == 0, now.stdout + now.stderr
    (export,) = sorted(launchd.backups.iterdir())
    assert f"New backup: {export}" in " ".join(now.stdout.split())
    assert (export / "dataindex.json").is_file()
    assert f"devpi-backup: wrote {export}" in launchd.log.read_text()
    assert "last exit code = 0" in launchd.launchctl("print", launchd.target).stdout

    # A new schedule is a new plist: bootout + bootstrap, as for devpi's own agent.
    moved = launchd.converge(devpi_backup_schedule={"minute": 5})
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert f"Unload {launchd.target}" in moved.stdout
    assert f"Load from its plist {launchd.target}" in moved.stdout
    assert plistlib.loads(launchd.plist.read_bytes())["StartCalendarInterval"] == {"Minute": 5}
    assert "runs = 0" in launchd.launchctl("print", launchd.target).stdout  # a fresh job

    off = launchd.converge(devpi_backup_enabled=False)
    assert off.returncode == 0, off.stdout + off.stderr
    assert launchd.launchctl("print", launchd.target).returncode == 113
    assert not launchd.plist.exists()
    assert not (Path(launchd.vars["devpi_base_dir"]) / "devpi-backup").exists()
    assert sorted(launchd.backups.iterdir()) == [export], "switching off keeps the exports"
    off_again = launchd.converge(devpi_backup_enabled=False)
    assert off_again.returncode == 0 and changed(off_again) == 0, off_again.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the launchctl stand-in needs Linux")
def test_the_backup_entry_point_fails_with_the_log_of_a_failed_run(
    launchd: LaunchdWorld, tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-server-dir"
    empty.mkdir()
    result = launchd.converge(run_backup=True, devpi_server_dir=str(empty))
    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    assert "The backup failed (the LaunchAgent test.mcquack.devpi.backup)" in said
    assert "devpi-backup: FAILED: devpi-export of" in said
