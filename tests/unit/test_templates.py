# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The role's templates, rendered by Ansible with the role's defaults, parse and say the right things."""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[2]


def render(tmp_path: Path, **extra: Any) -> Path:
    """Render the templates into tmp_path with the given role variables: devpi.plist,
    devpi.service, devpi-server.yml, devpi-backup.plist and devpi-backup.service."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = run_playbook("render_templates.yml", {"render_dir": str(tmp_path), **extra})
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(
        tmp_path_factory.mktemp("rendered"),
        devpi_service_manager="launchd",
        devpi_base_dir="/Users/eblume/devpi",
        devpi_launchd_agents_dir="/Users/eblume/Library/LaunchAgents",
        devpi_launchd_stdout_path="/Users/eblume/Library/Logs/mcquack.devpi.out.log",
        devpi_launchd_stderr_path="/Users/eblume/Library/Logs/mcquack.devpi.err.log",
        devpi_ca_bundle="/etc/ssl/cert.pem",
        devpi_environment={"TZ": "Europe/Berlin", "ODD": 'a "quoted" & <tagged> value'},
        devpi_server_options={"indexer-backend": "null", "mirror-cache-expiry": 3600},
        devpi_outside_url="https://devpi.example.org",
    )


def test_plist_is_a_launchd_agent_with_the_seed_defaults(rendered: Path) -> None:
    job = plistlib.loads((rendered / "devpi.plist").read_bytes())
    assert job["Label"] == "mcquack.eblume.devpi"
    assert job["ProgramArguments"] == [
        "/Users/eblume/devpi/venv/bin/devpi-server",
        "-c",
        "/Users/eblume/devpi/devpi-server.yml",
    ]
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] is True
    assert job["StandardOutPath"] == "/Users/eblume/Library/Logs/mcquack.devpi.out.log"
    assert job["StandardErrorPath"] == "/Users/eblume/Library/Logs/mcquack.devpi.err.log"
    assert job["WorkingDirectory"] == "/Users/eblume/devpi"


def test_plist_values_have_launchd_types(rendered: Path) -> None:
    job = plistlib.loads((rendered / "devpi.plist").read_bytes())
    for limits in ("SoftResourceLimits", "HardResourceLimits"):
        # an integer, not a boolean (bool is an int subclass) nor a string
        assert isinstance(job[limits]["NumberOfFiles"], int)
        assert not isinstance(job[limits]["NumberOfFiles"], bool)
        assert job[limits]["NumberOfFiles"] == 4096
    env = job["EnvironmentVariables"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    assert env["REQUESTS_CA_BUNDLE"] == "/etc/ssl/cert.pem"
    assert env["TZ"] == "Europe/Berlin"
    assert env["ODD"] == 'a "quoted" & <tagged> value'
    assert env["LANG"].endswith("UTF-8")


def test_plist_holds_no_password(tmp_path: Path) -> None:
    out = render(tmp_path, devpi_service_manager="launchd", devpi_root_password="s3cret-Pw")
    for name in ("devpi.plist", "devpi.service", "devpi-server.yml"):
        assert "s3cret-Pw" not in (out / name).read_text()


def test_config_file_carries_every_option(rendered: Path) -> None:
    config = yaml.safe_load((rendered / "devpi-server.yml").read_text())
    assert config == {
        "devpi-server": {
            "host": "127.0.0.1",
            "port": 3141,
            "serverdir": "/Users/eblume/devpi/server-dir",
            "secretfile": "/Users/eblume/devpi/secret",
            "restrict-modify": "root",
            "outside-url": "https://devpi.example.org",
            "indexer-backend": "null",
            "mirror-cache-expiry": 3600,
        }
    }


def test_systemd_unit_runs_unprivileged_and_hardened(tmp_path: Path) -> None:
    out = render(
        tmp_path,
        devpi_service_manager="systemd",
        devpi_ca_bundle="/etc/ssl/certs/ca-certificates.crt",
        devpi_environment={"ODD": 'say "hi" 100%'},
    )
    lines = (out / "devpi.service").read_text().splitlines()
    service = lines[lines.index("[Service]") :]
    assert "User=devpi" in service
    assert (
        "ExecStart=/var/lib/devpi/venv/bin/devpi-server -c /var/lib/devpi/devpi-server.yml"
        in service
    )
    assert "Restart=on-failure" in service
    assert "LimitNOFILE=4096" in service
    for hardening in (
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/devpi/server-dir",
        "PrivateTmp=true",
    ):
        assert hardening in service
    assert 'Environment="REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"' in service
    assert 'Environment="ODD=say \\"hi\\" 100%%"' in service
    assert "WantedBy=multi-user.target" in lines


def test_replication_changes_the_config_file_only(tmp_path: Path) -> None:
    """devpi_role goes into devpi-server.yml (devpi-server's own role and primary-url keys); the
    plist and the unit (both rendered every time) stay as a standalone host's, so a role change
    never reloads them."""
    common = {"devpi_service_manager": "launchd", "devpi_base_dir": "/Users/eblume/devpi"}
    for name in ("standalone", "replica", "primary"):
        (tmp_path / name).mkdir()
    standalone = render(tmp_path / "standalone", **common)
    replica = render(
        tmp_path / "replica",
        **common,
        devpi_role="replica",
        devpi_primary_url="http://devpi-primary.example.org:3141",
    )
    primary = render(tmp_path / "primary", **common, devpi_role="primary")
    for name in ("devpi.plist", "devpi.service"):
        assert (replica / name).read_bytes() == (standalone / name).read_bytes(), name
        assert (primary / name).read_bytes() == (standalone / name).read_bytes(), name
    config = yaml.safe_load((replica / "devpi-server.yml").read_text())["devpi-server"]
    assert config["role"] == "replica"
    assert config["primary-url"] == "http://devpi-primary.example.org:3141"
    config = yaml.safe_load((primary / "devpi-server.yml").read_text())["devpi-server"]
    assert config["role"] == "primary" and "primary-url" not in config
    config = yaml.safe_load((standalone / "devpi-server.yml").read_text())["devpi-server"]
    assert "role" not in config and "primary-url" not in config


def test_writes_are_restricted_to_root_unless_opened(tmp_path: Path) -> None:
    """devpi_restrict_modify becomes devpi-server's restrict-modify; "" leaves devpi's own
    default (the key absent), anything else is written as given."""
    for name, value in (("default", None), ("open", ""), ("alice", "root,alice")):
        extra = {} if value is None else {"devpi_restrict_modify": value}
        out = render(tmp_path / name, devpi_service_manager="systemd", **extra)
        config = yaml.safe_load((out / "devpi-server.yml").read_text())["devpi-server"]
        if name == "default":
            assert config["restrict-modify"] == "root"
        elif name == "open":
            assert "restrict-modify" not in config
        else:
            assert config["restrict-modify"] == "root,alice"


# --- What the service definitions restrict -----------------------------------------------------

# Every directive the units hold to keep devpi's exposure low (systemd.exec(5)), both units.
HARDENING = (
    "NoNewPrivileges=true",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "PrivateTmp=true",
    "PrivateDevices=true",
    "PrivateMounts=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectKernelLogs=true",
    "ProtectControlGroups=true",
    "ProtectClock=true",
    "ProtectHostname=true",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "RestrictNamespaces=true",
    "RestrictRealtime=true",
    "RestrictSUIDSGID=true",
    "LockPersonality=true",
    "MemoryDenyWriteExecute=true",
    "RemoveIPC=true",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
    "UMask=0077",
    "LimitCORE=0",
)
UNIT_SPECIFIC = {
    "devpi.service": (
        "ReadWritePaths=/var/lib/devpi/server-dir",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ),
    # The backup needs no network: devpi-export, devpi-import and devpi-fsck work on files.
    "devpi-backup.service": (
        "ReadWritePaths=/var/lib/devpi/server-dir /var/lib/devpi/backups",
        "RestrictAddressFamilies=AF_UNIX",
        "PrivateNetwork=true",
        "IPAddressDeny=any",
    ),
}


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(
        tmp_path_factory.mktemp("units"),
        devpi_service_manager="systemd",
        devpi_ca_bundle="/etc/ssl/certs/ca-certificates.crt",
    )


@pytest.mark.parametrize("unit", sorted(UNIT_SPECIFIC))
def test_units_hold_every_hardening_directive(units: Path, unit: str) -> None:
    lines = (units / unit).read_text().splitlines()
    service = lines[lines.index("[Service]") :]
    for directive in (*HARDENING, *UNIT_SPECIFIC[unit]):
        assert directive in service, f"{unit}: {directive}"
    # Nothing that would widen it again.
    assert not any(line.startswith(("User=root", "AmbientCapabilities=CAP_")) for line in service)


def exposure_comment(text: str) -> str:
    """The unit's comment that lists what stays exposed and why, as one line of text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# What stays exposed"))
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.lstrip("# "))
    return " ".join(block)


def systemd_analyze_offline(unit: Path) -> tuple[float, list[dict[str, Any]]]:
    """`systemd-analyze security --offline=true` of a unit file: the overall exposure and the
    checks it reports (name, set, exposure), as the tool scores a loaded unit."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    text = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "--offline" in text.stderr and text.returncode != 0:
        pytest.skip(f"systemd-analyze cannot analyse a unit file offline: {text.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", text.stdout)
    assert match, text.stdout + text.stderr
    checks = subprocess.run(
        [tool, "security", "--offline=true", "--json=short", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(match.group(1)), json.loads(checks.stdout)


@pytest.mark.parametrize("unit", sorted(UNIT_SPECIFIC))
def test_units_expose_little_and_say_why_for_the_rest(units: Path, unit: str) -> None:
    """At most 3.0 ("OK") in systemd's own scoring, and every check it still counts against the
    unit is named, with its reason, in the unit's comment."""
    score, checks = systemd_analyze_offline(units / unit)
    assert score <= 3.0, (unit, score)
    comment = exposure_comment((units / unit).read_text())
    for check in checks:
        if check["set"] or not float(check["exposure"] or 0):
            continue
        # e.g. "PrivateNetwork=", "RestrictAddressFamilies=~AF_UNIX", "RootDirectory=/RootImage="
        name = check["name"]
        families = re.search(r"AF_\((.*)\)|AF_([A-Z0-9]+)", name)
        if families:  # "~AF_(INET|INET6)" -> AF_INET, AF_INET6
            words = ["AF_" + f for f in (families.group(1) or families.group(2)).split("|")]
        else:
            words = [name.split("=")[0]]
        for word in words:
            assert word in comment, f"{unit}: {name} is exposed but not explained: {comment}"


def test_plists_restrict_what_launchd_can(rendered: Path) -> None:
    """launchd.plist(5): Umask (decimal 63 is 0o077), ProcessType, no core files."""
    for name, process_type in (("devpi.plist", "Standard"), ("devpi-backup.plist", "Background")):
        job = plistlib.loads((rendered / name).read_bytes())
        umask = job["Umask"]
        assert umask == 0o077 and isinstance(umask, int) and not isinstance(umask, bool), name
        assert job["ProcessType"] == process_type, name
        for limits in ("SoftResourceLimits", "HardResourceLimits"):
            core = job[limits]["Core"]
            assert core == 0 and isinstance(core, int) and not isinstance(core, bool), name


# The job the plist runs, in place of devpi-server: what launchd gave it.
REPORTER = """\
#!{python}
import json, os, resource, sys, time
umask = os.umask(0)
os.umask(umask)
report = {{
    "umask": umask,
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    "argv": sys.argv,
}}
with open({report!r} + ".tmp", "w") as out:
    json.dump(report, out)
os.replace({report!r} + ".tmp", {report!r})
print("started", flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the launchctl stand-in needs Linux")
def test_the_plist_restrictions_reach_the_job_under_the_launchctl_stand_in(tmp_path: Path) -> None:
    """The rendered plist bootstrapped by tests/doubles/launchctl, which applies Umask and the
    resource limits as launchd does (it type-checks ProcessType but gives it no effect): the
    job runs with umask 077, no core files, the open-files limit, and its log made 0600."""
    home = tmp_path / "home"
    out = render(
        tmp_path / "rendered",
        devpi_service_manager="launchd",
        devpi_base_dir=str(home / "devpi"),
        devpi_launchd_agents_dir=str(home / "Library/LaunchAgents"),
        devpi_launchd_stdout_path=str(home / "Library/Logs/mcquack.devpi.out.log"),
        devpi_launchd_stderr_path=str(home / "Library/Logs/mcquack.devpi.err.log"),
    )
    plist = home / "Library/LaunchAgents/mcquack.eblume.devpi.plist"
    plist.parent.mkdir(parents=True)
    (home / "Library/Logs").mkdir(parents=True)
    plist.write_bytes((out / "devpi.plist").read_bytes())
    plist.chmod(0o644)
    server = home / "devpi/venv/bin/devpi-server"
    server.parent.mkdir(parents=True)
    report = tmp_path / "report.json"
    server.write_text(REPORTER.format(python="/usr/bin/python3", report=str(report)))
    server.chmod(0o755)
    env = {**os.environ, "LAUNCHCTL_STANDIN_STATE": str(tmp_path / "state")}
    env.pop("LAUNCHCTL_STANDIN_NO_GUI", None)
    target = f"gui/{os.geteuid()}/mcquack.eblume.devpi"

    def launchctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "tests/doubles/launchctl"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    loaded = launchctl("bootstrap", f"gui/{os.geteuid()}", str(plist))
    assert loaded.returncode == 0, loaded.stderr
    try:
        deadline = time.monotonic() + 30
        while not report.exists():
            assert time.monotonic() < deadline, launchctl("print", target).stdout
            time.sleep(0.1)
        job = json.loads(report.read_text())
        assert job["argv"][1:] == ["-c", str(home / "devpi/devpi-server.yml")]
        assert job["umask"] == 0o077
        assert job["core"] == [0, 0]
        assert job["nofile"] == [4096, 4096]
        for log in ("out", "err"):
            path = home / f"Library/Logs/mcquack.devpi.{log}.log"
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        launchctl("bootout", target)
        deadline = time.monotonic() + 30
        while launchctl("print", target).returncode != 113 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert launchctl("print", target).returncode == 113
