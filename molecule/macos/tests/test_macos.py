# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Verify the launchd path and the operator's playbook (testinfra, as the Mac-like user eblume).

The test host is Linux with the launchctl stand-in (tests/doubles/launchctl); what is proven
here is the role's side of the contract with launchctl, not launchd itself.
"""

from __future__ import annotations

import os
import plistlib
import time
from pathlib import Path
from typing import Any

HOME = "/home/eblume"
LABEL = "mcquack.eblume.devpi"
PLIST = f"{HOME}/Library/LaunchAgents/{LABEL}.plist"
ROOT_PASSWORD = "op-Root-Secret-7"  # from op-items.json, through the op stand-in
EBLUME_PASSWORD = "op-Eblume-Secret-8"


def launchctl_print(host: Any) -> dict[str, str]:
    uid = host.check_output("id -u")
    out = host.run(f"launchctl print gui/{uid}/{LABEL}")
    assert out.rc == 0, out.stderr
    fields = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep:
            fields.setdefault(key, value)
    fields["_text"] = out.stdout
    return fields


def test_plist_is_the_rendered_launch_agent(host: Any) -> None:
    plist = host.file(PLIST)
    assert plist.user == "eblume"
    assert plist.mode == 0o644
    job = plistlib.loads(plist.content)
    assert job["Label"] == LABEL
    assert job["ProgramArguments"] == [
        f"{HOME}/devpi/venv/bin/devpi-server",
        "-c",
        f"{HOME}/devpi/devpi-server.yml",
    ]
    assert host.file(job["ProgramArguments"][0]).mode & 0o111
    assert job["KeepAlive"] is True
    assert job["RunAtLoad"] is True
    assert job["StandardOutPath"] == f"{HOME}/Library/Logs/mcquack.devpi.out.log"
    assert job["StandardErrorPath"] == f"{HOME}/Library/Logs/mcquack.devpi.err.log"
    assert job["SoftResourceLimits"]["NumberOfFiles"] == 4096
    assert job["EnvironmentVariables"]["REQUESTS_CA_BUNDLE"] == "/etc/ssl/certs/ca-certificates.crt"


def test_launchd_runs_that_definition_once(host: Any) -> None:
    state = launchctl_print(host)
    assert state["state"] == "running"
    assert state["path"] == PLIST
    assert state["program"] == f"{HOME}/devpi/venv/bin/devpi-server"
    # Converge and the idempotent re-run together started devpi exactly once.
    assert state["runs"] == "1"
    pid = state["pid"]
    listener = host.check_output("ss -Hltnp 'sport = :3141'")
    assert f"pid={pid}," in listener


def test_api_on_loopback_and_pip_install_through_root_pypi(host: Any, devpi: Any) -> None:
    assert devpi.get("/+api")["type"] == "apiconfig"
    listeners = host.check_output("ss -Hltn 'sport = :3141'").splitlines()
    assert {line.split()[3] for line in listeners} == {"127.0.0.1:3141"}
    result = devpi.pip_install("root/pypi", "six")
    assert result.rc == 0, result.stderr


def test_venv_built_with_pip_at_the_pins(host: Any) -> None:
    installer = host.check_output(
        f"cat {HOME}/devpi/venv/lib/python3*/site-packages/devpi_server-6.20.3.dist-info/INSTALLER"
    )
    assert installer.strip() == "pip"


def test_logs_land_in_library_logs(host: Any) -> None:
    logs = host.check_output(
        f"cat {HOME}/Library/Logs/mcquack.devpi.err.log {HOME}/Library/Logs/mcquack.devpi.out.log"
    )
    assert "Serving on http://127.0.0.1:3141" in logs


def test_root_and_eblume_log_in_with_the_1password_values(devpi: Any) -> None:
    for user, password in (("root", ROOT_PASSWORD), ("eblume", EBLUME_PASSWORD)):
        assert devpi.login_status(user, password) == 200, user


def test_eblume_dev_resolves_through_to_pypi(devpi: Any) -> None:
    assert devpi.get("/eblume/dev")["result"]["bases"] == ["root/pypi"]
    result = devpi.pip_install("eblume/dev", "six")
    assert result.rc == 0, result.stderr


def test_passwords_not_in_the_vvv_log_or_on_the_host(host: Any) -> None:
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible-vvv.log"
    text = log.read_text()
    # The log really is the -vvv output of the converge that fetched the password.
    assert "ESTABLISH SSH CONNECTION" in text
    assert "Fetch devpi's passwords from 1Password" in text
    assert "devpi-init" in text
    for secret in (ROOT_PASSWORD, EBLUME_PASSWORD):
        assert secret not in text
        found = host.run(
            f"grep -rlF -- '{secret}' {HOME}/devpi/devpi-server.yml {HOME}/Library /tmp"
        )
        assert found.stdout.strip() == ""


def test_keepalive_brings_a_killed_devpi_back(host: Any, devpi: Any, wait_for: Any) -> None:
    before = launchctl_print(host)
    host.check_output(f"kill -9 {before['pid']}")
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:
        after = launchctl_print(host)
        if after.get("state") == "running" and after.get("pid") not in (None, before["pid"]):
            break
        time.sleep(1)
    assert after["pid"] != before["pid"], "launchd did not restart devpi"
    assert int(after["runs"]) == int(before["runs"]) + 1
    wait_for(lambda: devpi.status("/+api") == 200, 60)


def test_stop_and_start_entry_points(
    host: Any, devpi: Any, entry_point: Any, playbook: Any
) -> None:
    """playbooks/devpi_stop.yml and devpi_start.yml under launchd (the stand-in): stop boots
    the job out and waits until launchd has removed it and the port is free, a second stop is
    ok; start bootstraps the plist and waits for /+api, a second start is ok; after a stop the
    operator's converge (provision-indri.yml --tags devpi) brings devpi back with its data."""
    uid = host.check_output("id -u")
    stopped = entry_point("stop")
    assert stopped.returncode == 0, stopped.tail()
    assert stopped.recap["changed"] == 1, stopped.tail()
    assert host.run(f"launchctl print gui/{uid}/{LABEL}").rc == 113, "the job is still loaded"
    assert not host.socket("tcp://127.0.0.1:3141").is_listening
    assert host.file(PLIST).exists, "stop must keep the plist"
    again = entry_point("stop")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()

    started = entry_point("start")
    assert started.returncode == 0, started.tail()
    assert started.recap["changed"] == 1, started.tail()
    assert launchctl_print(host)["state"] == "running"
    assert devpi.status("/+api") == 200, "start ends with devpi answering"
    again = entry_point("start")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()

    assert entry_point("stop").returncode == 0
    assert host.run(f"launchctl print gui/{uid}/{LABEL}").rc == 113
    run = playbook("playbooks/provision-indri.yml")
    assert run.returncode == 0, run.tail()
    # (The -vvv log of this scenario hides which task changed: the recap counts the bootstrap.)
    assert run.recap["changed"] >= 1, run.tail()
    assert launchctl_print(host)["state"] == "running"
    assert devpi.status("/+api") == 200
    assert devpi.login_status("eblume", EBLUME_PASSWORD) == 200


def test_a_dry_run_of_the_converged_mac_has_nothing_to_change(
    host: Any, devpi: Any, playbook: Any
) -> None:
    """--check --diff of the operator's playbook on the converged launchd host: 0 changed, the
    same job (runs and pid) before and after."""
    before = launchctl_print(host)
    run = playbook("playbooks/provision-indri.yml", None, "--check", "--diff")
    assert run.returncode == 0, run.tail()
    assert run.recap["changed"] == 0, run.tail()
    after = launchctl_print(host)
    assert (after["pid"], after["runs"]) == (before["pid"], before["runs"])
    assert devpi.status("/+api") == 200
