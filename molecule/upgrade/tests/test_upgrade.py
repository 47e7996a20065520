# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Upgrades, rollback, schema migration and root password rotation, in order, on one host.

molecule converged devpi-server 6.19.3 + devpi-web 5.1.0 (group_vars). Each test below runs
the role again with ansible-playbook against the same host, with other pins or passwords,
and checks what devpi serves and what is in its server-dir. The tests depend on their order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from devpi_testclient import script

BASE = "/var/lib/devpi"
SERVER_DIR = f"{BASE}/server-dir"
API = "http://127.0.0.1:3141"
OLD = {"devpi_server_version": "6.19.3", "devpi_web_version": "5.1.0"}
NEW = {"devpi_server_version": "6.20.3", "devpi_web_version": "5.1.1"}
ROOT_PASSWORD = "upgrade-Root-Pw-1"
ALICE_PASSWORD = "upgrade-Alice-Pw-2"
ROTATED_PASSWORD = "rotated-Root-Pw-3"

CLIENT_LOOP = script(
    r"""
import json, os, sys, threading, time, urllib.request
# Bounded client load while a converge runs: /+api polled every 0.1 s (downtime) in one
# thread, pip downloads of a package through root/pypi (failed installs) in another.
# Both stop at the stop file or after 300 s.
stop, out = sys.argv[1], sys.argv[2]
started = time.monotonic()
result = {"polls": 0, "poll_failures": 0, "downtime_s": 0.0, "installs": 0, "install_failures": 0}

def running():
    return not os.path.exists(stop) and time.monotonic() - started < 300

def poll():
    while running():
        t0 = time.monotonic()
        try:
            urllib.request.urlopen("http://127.0.0.1:3141/+api", timeout=1).read()
            ok = True
        except Exception:
            ok = False
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))
        result["polls"] += 1
        if not ok:
            result["poll_failures"] += 1
            result["downtime_s"] += time.monotonic() - t0

def install():
    while running():
        ok = pip_download("/var/tmp/loop-venv/bin/pip", "http://127.0.0.1:3141/root/pypi/+simple/",
                          "six", "/var/tmp/loop-dl")
        result["installs"] += 1
        result["install_failures"] += not ok

threads = [threading.Thread(target=poll), threading.Thread(target=install)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
result["downtime_s"] = round(result["downtime_s"], 2)
json.dump(result, open(out, "w"))
"""
)


def served_version(host: Any) -> str:
    status = json.loads(host.check_output(f"curl -sSf -H 'Accept: application/json' {API}/+status"))
    return str(status["result"]["versioninfo"]["devpi-server"])


def fingerprint(host: Any) -> str:
    """Every file of the server-dir (path, size and content) but devpi-web's search index,
    .indices: devpi-web derives it from the data and adds to it at every start."""
    return str(
        host.check_output(
            f"cd {SERVER_DIR} && find . -type f -not -path './.indices/*' -print0 | sort -z "
            "| xargs -0 sha256sum | sha256sum"
        )
    )


def data_is_intact(host: Any, devpi: Any) -> None:
    assert devpi.login_status("alice", ALICE_PASSWORD) == 200
    assert devpi.get("/alice/dev")["result"]["bases"] == ["root/pypi"]
    install = devpi.pip_install("alice/dev", "tinypkg", "six")
    assert install.rc == 0, install.stderr
    assert host.run(f"find {SERVER_DIR}/+files/root/pypi -name 'six-*.whl' | grep -q .").rc == 0, (
        "cached six is gone"
    )


@pytest.fixture(scope="module")
def seeded(host: Any, devpi: Any) -> str:
    """alice's upload in alice/dev and six in the mirror cache, on the old release."""
    assert served_version(host) == OLD["devpi_server_version"]
    devpi.upload("alice", ALICE_PASSWORD, "alice/dev", "tinypkg", "1.0")
    assert devpi.pip_install("root/pypi", "six").rc == 0
    data_is_intact(host, devpi)
    return fingerprint(host)


def test_a_version_that_does_not_exist_fails_before_touching_devpi(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    result = converge({"devpi_server_version": "99.0.0", "devpi_web_version": "5.1.0"})
    assert result.returncode != 0
    assert "Could not build a venv with devpi-server==99.0.0" in result.output
    assert "nothing was switched" in result.output
    assert served_version(host) == "6.19.3"
    assert fingerprint(host) == seeded


def test_a_version_that_cannot_start_is_rolled_back(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    # devpi-server 6.0.0 installs cleanly but dies at import (it lacks its ruamel.yaml dependency).
    result = converge({"devpi_server_version": "6.0.0", "devpi_web_version": "4.1.1"})
    assert result.returncode != 0
    assert "devpi-server 6.0.0" in result.output
    assert "which is serving again" in result.output
    assert "No module named 'ruamel'" in result.output
    assert served_version(host) == "6.19.3"
    assert host.file(f"{BASE}/venv").linked_to.endswith("devpi-server-6.19.3-web-5.1.0")
    assert fingerprint(host) == seeded


def test_a_config_devpi_rejects_is_put_back_and_devpi_serves_on_the_old_one(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    config = f"{BASE}/devpi-server.yml"
    before = host.file(config).content_string
    # An option devpi-server's argument parser refuses at start: it exits, systemd restarts it.
    result = converge({"devpi_server_options": {"threads": "many"}})
    assert result.returncode != 0
    said = " ".join(result.output.split())
    assert "devpi-server: error: argument --threads: invalid int value: 'many'" in said
    assert f"Put back {config}, which is serving again" in said
    assert host.file(config).content_string == before
    assert served_version(host) == "6.19.3"
    assert devpi.status("/+api") == 200
    assert fingerprint(host) == seeded
    # What was put back is what the role declares: the next converge has nothing to do.
    again = converge()
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()


def test_a_crash_looping_devpi_is_restarted_on_the_files_a_converge_puts_right(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    """devpi exiting at every start (its config unreadable to it) and systemd restarting it:
    a converge writes the file as declared and restarts devpi now, not waiting out the loop's
    restart delay (a waiting unit is "activating" to systemd, which a plain start leaves)."""
    config = f"{BASE}/devpi-server.yml"
    host.check_output(f"chown root:root {config} && chmod 0600 {config} && systemctl restart devpi")
    deadline = time.monotonic() + 30
    while int(host.check_output("systemctl show -P NRestarts devpi")) < 1:
        assert time.monotonic() < deadline, "devpi did not start crash-looping"
        time.sleep(0.5)
    result = converge()
    assert result.returncode == 0, result.tail()
    assert devpi.status("/+api") == 200
    assert host.file(config).user == "devpi"
    assert fingerprint(host) == seeded


def test_a_schema_change_without_permission_rolls_back_and_says_what_to_set(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    # A server-dir marked with the exact text "6.19.3": 6.20.3 refuses it ("Incompatible state"),
    # 6.19.3 (exact match) still opens and exports it.
    host.check_output(f"printf %s 6.19.3 > {SERVER_DIR}/.serverversion")
    marked = fingerprint(host)
    result = converge(NEW)
    assert result.returncode != 0
    assert "Incompatible state" in result.output
    assert "devpi_allow_migration: true" in result.output
    assert served_version(host) == "6.19.3"
    assert fingerprint(host) == marked


def test_a_schema_change_with_permission_migrates_keeping_the_old_server_dir(
    host: Any, devpi: Any, converge: Any, seeded: str
) -> None:
    result = converge({**NEW, "devpi_allow_migration": True})
    assert result.returncode == 0, result.tail()
    assert served_version(host) == "6.20.3"
    assert host.file(f"{SERVER_DIR}/.serverversion").content_string == "4"
    kept = host.check_output(f"ls -d {SERVER_DIR}.before-6.20.3-*").split()
    assert len(kept) == 1 and host.file(f"{kept[0]}/.serverversion").content_string == "6.19.3"
    assert host.run(f"ls -d {BASE}/export-*").rc != 0, (
        "the export is removed after a successful migration"
    )
    data_is_intact(host, devpi)
    assert converge({**NEW, "devpi_allow_migration": True}).recap["changed"] == 0


def test_a_plain_upgrade_keeps_data_with_one_restart_of_downtime(
    host: Any, devpi: Any, converge: Any
) -> None:
    # Back to the old pins (its venv is kept: a switch and a restart), then up again under load.
    assert converge(OLD).returncode == 0
    assert served_version(host) == "6.19.3"
    host.check_output(
        "rm -f /var/tmp/loop.stop /var/tmp/loop.json && python3 -m venv /var/tmp/loop-venv"
    )
    host.check_output(
        f"nohup python3 - /var/tmp/loop.stop /var/tmp/loop.json >/dev/null 2>&1 <<'PY' &\n{CLIENT_LOOP}\nPY"
    )
    time.sleep(2)
    result = converge(NEW)
    host.check_output("touch /var/tmp/loop.stop")
    deadline = time.monotonic() + 30
    while not host.file("/var/tmp/loop.json").exists and time.monotonic() < deadline:
        time.sleep(0.5)
    assert result.returncode == 0, result.tail()
    load = json.loads(host.file("/var/tmp/loop.json").content_string)
    print(f"\nclient load across the upgrade: {json.dumps(load)}")
    assert served_version(host) == "6.20.3"
    data_is_intact(host, devpi)
    assert load["installs"] > 0 and load["polls"] > 0
    # The new venv was complete before the old process stopped: downtime is one restart.
    assert load["downtime_s"] < 15, load
    assert converge(NEW).recap["changed"] == 0


def test_old_venvs_beyond_keep_are_removed(host: Any, devpi: Any, converge: Any) -> None:
    venvs = sorted(host.check_output(f"ls {BASE}/venvs").split())
    assert "devpi-server-6.20.3-web-5.1.1" in venvs
    assert len(venvs) <= 2, venvs
    assert "devpi-server-6.0.0-web-4.1.1" not in venvs


def test_a_rotated_root_password_is_set_without_the_old_one(
    host: Any, devpi: Any, converge: Any
) -> None:
    rotated = {**NEW, "devpi_root_password": ROTATED_PASSWORD}
    result = converge(rotated, "-vvv")
    assert result.returncode == 0, result.tail()
    assert result.recap["changed"] >= 1
    assert devpi.login_status("root", ROTATED_PASSWORD) == 200
    assert devpi.login_status("root", ROOT_PASSWORD) == 401
    data_is_intact(host, devpi)
    # -vvv shows every remote command line: the password is in none of them, nor in any output.
    assert "ESTABLISH SSH CONNECTION" in result.output
    assert ROTATED_PASSWORD not in result.output
    journal = host.run(f"journalctl --no-pager | grep -cF -- '{ROTATED_PASSWORD}'")
    assert journal.stdout.strip() == "0"
    found = host.run(
        f"grep -rlF -- '{ROTATED_PASSWORD}' /etc/systemd /var/log /tmp /var/tmp {BASE}/devpi-server.yml"
    )
    assert found.stdout.strip() == ""
    assert converge(rotated).recap["changed"] == 0


INSTALL_PID = f"{BASE}/venvs/.install.pid"
NO_WEB = {**NEW, "devpi_root_password": ROTATED_PASSWORD, "devpi_web_enabled": False}


def stray(host: Any) -> str:
    """Processes running something in devpi_venvs_dir but devpi itself (its interpreter is the
    venv's real path: the venv link is resolved when the venv's scripts are written)."""
    return str(
        host.run(
            f"ps -eo pid,args | grep -F -- '{BASE}/venvs/' | grep -v -e grep -e /bin/devpi-server"
        ).stdout
    ).strip()


def unbuilt(host: Any, pins: dict[str, Any]) -> None:
    """Remove the (inactive) venv for these pins, so that the next converge builds it."""
    web = f"-web-{pins['devpi_web_version']}" if pins.get("devpi_web_enabled", True) else ""
    venv = f"{BASE}/venvs/devpi-server-{pins['devpi_server_version']}{web}"
    assert host.check_output(f"readlink -f {BASE}/venv") != venv, f"{venv} is the active venv"
    host.check_output(f"rm -rf {venv}")


def test_an_install_left_running_is_ended_by_its_recorded_pid(host: Any, converge: Any) -> None:
    """What a killed converge leaves (its install still running, its PID recorded) is ended by
    the next converge before it builds; a recorded PID that now belongs to another program is
    left alone."""
    other = int(host.check_output("setsid sleep 600 >/dev/null 2>&1 < /dev/null & echo $!"))
    orphan = int(
        host.check_output(
            # The service account's, as the role's install is (setpriv execs: $! is the sh).
            "setsid setpriv --reuid devpi --regid devpi --init-groups "
            f"sh -c 'sleep 600; : {BASE}/venvs/devpi-server-6.20.3' >/dev/null 2>&1 < /dev/null & echo $!"
        )
    )
    try:
        host.check_output(f"echo {other} > {INSTALL_PID}")
        unbuilt(host, NO_WEB)
        result = converge(NO_WEB)
        assert result.returncode == 0, result.tail()
        assert host.run(f"kill -0 {other}").rc == 0, "another program's PID was killed"
        assert "ended PID" not in result.output
        host.check_output(f"echo {orphan} > {INSTALL_PID}")
        unbuilt(host, {**NO_WEB, "devpi_web_enabled": True})
        result = converge({**NO_WEB, "devpi_web_enabled": True})
        assert result.returncode == 0, result.tail()
        said = " ".join(result.output.split())
        assert f"ended PID {orphan}, left running by an interrupted run" in said
        assert host.run(f"kill -0 {orphan}").rc != 0
        assert not host.file(INSTALL_PID).exists
    finally:
        host.run(f"kill {other} {orphan}")
    assert stray(host) == ""


def test_a_converge_killed_during_its_install_leaves_no_install_running(
    host: Any, converge: Any, playbook_argv: Any
) -> None:
    """The real thing: ansible-playbook killed (its whole process group) while the host runs
    its install; the next converge ends anything it left and builds; no stray process."""
    unbuilt(host, NO_WEB)
    proc = subprocess.Popen(
        playbook_argv(NO_WEB), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not host.file(INSTALL_PID).exists:
            assert proc.poll() is None, "the converge ended before its install started"
            assert time.monotonic() < deadline, "no install started"
            time.sleep(0.2)
        pid = int(host.file(INSTALL_PID).content_string.strip() or 0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = host.run(f"kill -0 {pid}").rc == 0
    print(f"\ninstall PID {pid} {'still running' if left else 'gone'} after the kill")
    result = converge(NO_WEB)
    assert result.returncode == 0, result.tail()
    # The killed run's install may finish by itself before the converge looks (the previous
    # test proves one still running is ended); either way nothing of it is left.
    ended = f"ended PID {pid}" in " ".join(result.output.split())
    print(f"the converge {'ended it' if ended else 'found it gone'}")
    assert stray(host) == ""
    assert not host.file(INSTALL_PID).exists
    back = converge({**NO_WEB, "devpi_web_enabled": True})
    assert back.returncode == 0, back.tail()
