# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Backups and restore, in order, on two real systemd hosts (testinfra, run by molecule).

molecule converged devpi-backup with backups on (group_vars: devpi_backup_enabled, keep 2);
devpi-restore is fresh. The tests seed data on devpi-backup, back it up through systemd, then
restore its export onto devpi-restore. They depend on their order.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra

from devpi_testclient import script

testinfra_hosts = ["devpi-backup"]

BASE = "/var/lib/devpi"
SERVER_DIR = f"{BASE}/server-dir"
BACKUPS = f"{BASE}/backups"
ROOT_PASSWORD = "backup-Root-Pw-1"
# Made through devpi's API, not declared to the role: only the export can bring them back.
CAROL_PASSWORD = "backup-Carol-Pw-2"
CAROL_DEV = {
    "type": "stage",
    "bases": ["root/pypi"],
    "volatile": False,
    "acl_upload": ["carol"],
    "mirror_whitelist": ["tinypkg"],
    "title": "Carol's releases",
}
RESTORED_ROOT_PASSWORD = "restore-Root-Pw-3"
KEEP = 2
REPO = Path(__file__).resolve().parents[3]

# While it runs: uploads of new versions to carol/dev (with the devpi test client,
# tools/devpi_testclient.py) and downloads of PyPI packages that devpi has not cached yet
# through root/pypi, both until the stop file appears.
CLIENT_LOOP = script(
    r"""
import json, os, sys, threading

api, password, stop, out = sys.argv[1:5]
result = {"uploads": 0, "upload_failures": 0, "downloads": 0, "download_failures": 0}
carol = DevpiClient(api, timeout=None).login("carol", password)

def uploads():
    n = 0
    while not os.path.exists(stop):
        n += 1
        try:
            carol.upload("carol/dev", "loadpkg", f"1.{n}", files={"loadpkg/__init__.py": b"#" * 20000})
            result["uploads"] += 1
        except Exception:
            result["upload_failures"] += 1

def downloads():
    for name in ["idna", "certifi", "packaging", "pyparsing", "attrs", "iniconfig", "pluggy", "tomli",
                 "colorama", "wheel", "click", "markupsafe", "jinja2", "urllib3", "charset-normalizer"]:
        if os.path.exists(stop):
            break
        ok = pip_download("/var/tmp/loop-venv/bin/pip", api + "/root/pypi/+simple/", name, "/var/tmp/loop-dl")
        result["downloads"] += 1
        result["download_failures"] += not ok

threads = [threading.Thread(target=uploads), threading.Thread(target=downloads)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
json.dump(result, open(out, "w"))
"""
)


def exports(host: Any) -> list[str]:
    """The dated exports in the backup directory, oldest first."""
    out = host.check_output(f"find {BACKUPS} -mindepth 1 -maxdepth 1 -name 'devpi-export-*' | sort")
    return [line for line in out.splitlines() if line]


def backup(host: Any) -> tuple[Any, float]:
    """systemctl start of the backup service (it returns when the oneshot has finished)."""
    started = time.monotonic()
    result = host.run("systemctl start devpi-backup.service")
    return result, time.monotonic() - started


def fingerprint(host: Any) -> str:
    """Every file of the server-dir but devpi-web's search index (see test_upgrade.py)."""
    return str(
        host.check_output(
            f"cd {SERVER_DIR} && find . -type f -not -path './.indices/*' -print0 | sort -z "
            "| xargs -0 sha256sum | sha256sum"
        )
    )


@pytest.fixture(scope="module")
def restore_host() -> Any:
    return testinfra.get_host(
        "ansible://devpi-restore", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


@pytest.fixture(scope="module")
def seeded(host: Any, devpi: Any) -> dict[str, Any]:
    """carol and carol/dev (made through the API), her upload, and six in the mirror cache."""
    devpi.root_request(
        "PUT", "/carol", {"password": CAROL_PASSWORD, "email": "carol@example.org"}, ROOT_PASSWORD
    )
    devpi.root_request("PUT", "/carol/dev", CAROL_DEV, ROOT_PASSWORD)
    devpi.upload("carol", CAROL_PASSWORD, "carol/dev", "tinypkg", "1.0", "carol's package")
    assert devpi.pip_install("root/pypi", "six").rc == 0
    assert host.run(f"find {SERVER_DIR}/+files/root/pypi -name 'six-*.whl' | grep -q .").rc == 0
    index: dict[str, Any] = devpi.get("/carol/dev?no_projects=")["result"]
    return index


def test_the_backup_job_is_installed_hardened_and_scheduled(host: Any) -> None:
    assert host.file(BACKUPS).is_directory
    assert host.file(BACKUPS).user == "devpi"
    assert host.file(BACKUPS).mode == 0o700
    script = host.file(f"{BASE}/devpi-backup")
    assert script.user == "root" and script.mode == 0o755
    unit = host.file("/etc/systemd/system/devpi-backup.service").content_string.splitlines()
    for line in (
        "Type=oneshot",
        "User=devpi",
        f"ExecStart={BASE}/devpi-backup",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        f"ReadWritePaths={SERVER_DIR} {BACKUPS}",
    ):
        assert line in unit, line
    timer = host.file("/etc/systemd/system/devpi-backup.timer").content_string.splitlines()
    assert "OnCalendar=*-*-* 03:17:00" in timer and "Persistent=true" in timer
    assert host.run("systemctl is-enabled --quiet devpi-backup.timer").rc == 0
    assert host.run("systemctl is-active --quiet devpi-backup.timer").rc == 0
    timers = host.check_output("systemctl list-timers --all --no-pager devpi-backup.timer")
    print(timers)
    assert "devpi-backup.timer" in timers and "devpi-backup.service" in timers
    assert host.check_output(
        "systemctl show --property NextElapseUSecRealtime --value devpi-backup.timer"
    )


def test_a_backup_through_systemd_writes_a_checked_export(
    host: Any, seeded: dict[str, Any]
) -> None:
    result, seconds = backup(host)
    assert result.rc == 0, host.run("journalctl -u devpi-backup --no-pager -n 30").stdout
    print(f"backup: {seconds:.1f} s")
    (export,) = exports(host)
    journal = host.check_output("journalctl -u devpi-backup.service --no-pager -o cat")
    assert f"devpi-backup: wrote {export}" in journal
    print([line for line in journal.splitlines() if "devpi-backup:" in line][-1])
    assert host.file(export).user == "devpi" and host.file(export).mode == 0o700
    data = json.loads(host.check_output(f"cat {export}/dataindex.json"))
    assert set(data["users"]) == {"root", "carol"}
    files = [f["relpath"] for f in data["indexes"]["carol/dev"]["files"]]
    assert files == ["carol/dev/tinypkg/1.0/tinypkg-1.0-py3-none-any.whl"]
    # devpi_backup_include_mirrored_files is off: root/pypi's settings, not its cached files.
    assert "files" not in data["indexes"]["root/pypi"]
    assert host.run(f"find {export} -name 'six-*'").stdout.strip() == ""
    # Nothing temporary is left next to it.
    assert host.run(f"find {BACKUPS} -mindepth 1 -maxdepth 1 -name '.*'").stdout.strip() == ""
    size = host.check_output(f"du -sk {export}").split()[0]
    print(f"export: {size} KiB")


def test_n_plus_two_runs_keep_the_newest_n(host: Any, seeded: dict[str, Any]) -> None:
    made = exports(host)
    for _run in range(KEEP + 1):
        time.sleep(1)  # a new second, a new name
        result, seconds = backup(host)
        assert result.rc == 0
        made.append(exports(host)[-1])
        print(f"backup: {seconds:.1f} s")
    assert len(made) == KEEP + 2 and len(set(made)) == KEEP + 2
    assert exports(host) == made[-KEEP:]
    journal = host.check_output("journalctl -u devpi-backup.service --no-pager -o cat")
    for old in made[:-KEEP]:
        assert f"devpi-backup: removed {old} (keeping {KEEP})" in journal


def test_a_version_switch_backs_up_first_with_the_old_version_and_a_no_op_does_not(
    host: Any, seeded: dict[str, Any], converge: Any
) -> None:
    def export_version(export: str) -> str:
        return str(json.loads(host.check_output(f"cat {export}/dataindex.json"))["devpi_server"])

    def active_version() -> str:
        return str(
            host.check_output(
                f"{BASE}/venv/bin/python -c 'import devpi_server; print(devpi_server.__version__)'"
            )
        ).strip()

    defaults = active_version()
    # The upgrade scenario's older pins: a switch away from the defaults and back again, both
    # with a server-dir that has data.
    older = {"devpi_server_version": "6.19.3", "devpi_web_version": "5.1.0"}
    for pins, before_version in ((older, defaults), ({}, "6.19.3")):
        before = set(exports(host))
        run = converge(pins)
        assert run.returncode == 0, run.tail()
        new = sorted(set(exports(host)) - before)
        assert len(new) == 1, (new, run.tail())
        said = " ".join(run.output.split())
        assert f"New backup: {new[0]}" in said, run.tail()
        # Taken before the switch: written by the version that was active until then.
        assert export_version(new[0]) == before_version
        print(f"switch from {before_version}: {run.seconds:.1f} s with its backup {new[0]}")
    assert active_version() == defaults
    kept = exports(host)
    again = converge()
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()
    assert exports(host) == kept


def test_the_backup_entry_point_runs_the_job_and_names_the_export(
    host: Any, seeded: dict[str, Any], entry_point: Any
) -> None:
    before = exports(host)
    run = entry_point("backup")
    assert run.returncode == 0, run.tail()
    new = exports(host)[-1]
    assert new not in before
    assert f"New backup: {new}" in " ".join(run.output.split())
    print(f"tasks_from: backup: {run.seconds:.1f} s")


def test_a_backup_while_clients_upload_and_fill_the_mirror_passes_its_check(
    host: Any, seeded: dict[str, Any]
) -> None:
    host.check_output(
        "python3 -m venv /var/tmp/loop-venv && rm -rf /var/tmp/loop-stop /var/tmp/loop-dl"
    )
    loop = shlex.join(
        [
            "python3",
            "-c",
            CLIENT_LOOP,
            "http://127.0.0.1:3141",
            CAROL_PASSWORD,
            "/var/tmp/loop-stop",
            "/var/tmp/loop.json",
        ]
    )
    host.check_output(f"nohup {loop} >/var/tmp/loop.log 2>&1 &")
    time.sleep(3)
    try:
        result, seconds = backup(host)
    finally:
        host.check_output("touch /var/tmp/loop-stop")
    for _second in range(60):
        if host.file("/var/tmp/loop.json").exists:
            break
        time.sleep(1)
    load = json.loads(host.check_output("cat /var/tmp/loop.json"))
    print(f"backup under load: {seconds:.1f} s, client loop: {load}")
    assert result.rc == 0, host.run("journalctl -u devpi-backup --no-pager -n 30").stdout
    assert load["uploads"] > 0 and load["upload_failures"] == 0
    assert load["downloads"] > load["download_failures"]
    # What the export holds is one serial's state: its uploads are a prefix of what was made.
    export = exports(host)[-1]
    data = json.loads(host.check_output(f"cat {export}/dataindex.json"))
    versions = {
        f["version"] for f in data["indexes"]["carol/dev"]["files"] if f["projectname"] == "loadpkg"
    }
    print(f"loadpkg versions in the export: {len(versions)} of {load['uploads']} uploaded")
    assert versions == {f"1.{n}" for n in range(1, len(versions) + 1)}


def test_a_backup_that_cannot_write_fails_and_keeps_the_good_exports(
    host: Any, seeded: dict[str, Any]
) -> None:
    good = exports(host)
    digests = host.check_output(f"sha256sum {' '.join(e + '/dataindex.json' for e in good)}")
    host.check_output(f"chmod 0555 {BACKUPS}")
    try:
        result, _seconds = backup(host)
        assert result.rc != 0
        assert host.run("systemctl is-failed --quiet devpi-backup.service").rc == 0
        journal = host.check_output("journalctl -u devpi-backup.service --no-pager -o cat -n 20")
        print(journal)
        assert (
            f"devpi-backup: FAILED: cannot write to the backup directory {BACKUPS} as devpi"
            in journal
        )
    finally:
        host.check_output(f"chmod 0700 {BACKUPS} && systemctl reset-failed devpi-backup.service")
    assert exports(host) == good
    assert (
        host.check_output(f"sha256sum {' '.join(e + '/dataindex.json' for e in good)}") == digests
    )


def test_the_export_restores_onto_a_fresh_host(
    host: Any,
    restore_host: Any,
    devpi: Any,
    seeded: dict[str, Any],
    converge: Any,
    playbook: Any,
) -> None:
    from_backup = exports(host)[-1]
    name = from_backup.rsplit("/", 1)[-1]
    copied = playbook(
        "molecule/backup/copy_export.yml",
        {"export_name": name, "controller_dir": os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]},
    )
    assert copied.returncode == 0, copied.tail()
    assert not restore_host.file(f"{SERVER_DIR}").exists, "devpi-restore is not fresh"
    restore = type(converge)(REPO / "playbooks/devpi.yml", "devpi-restore")
    restore_vars = {
        "devpi_target_hosts": "devpi-restore",
        "devpi_restore_from": f"/srv/restore/{name}",
        # Another root password than the export's: the restore makes it root's.
        "devpi_root_password": RESTORED_ROOT_PASSWORD,
    }
    run = restore(restore_vars)
    assert run.returncode == 0, run.tail()
    print(f"restore converge: {run.seconds:.1f} s, {run.recap}")
    # The scenarios' Devpi helper (molecule/conftest.py), on the other host.
    restored = type(devpi)(restore_host)
    assert restored.login_status("carol", CAROL_PASSWORD) == 200
    assert restored.login_status("root", RESTORED_ROOT_PASSWORD) == 200
    assert restored.login_status("root", ROOT_PASSWORD) == 401
    index = restored.get("/carol/dev?no_projects=")["result"]
    assert index == seeded
    install = restored.pip_install("carol/dev", "tinypkg", "six")
    assert install.rc == 0, install.stderr
    assert restore_host.file(SERVER_DIR).user == "devpi"
    assert restore_host.file(SERVER_DIR).mode == 0o700
    again = restore(restore_vars)
    assert again.returncode == 0, again.tail()
    assert again.recap["changed"] == 0, again.tail()


def test_a_new_schedule_moves_the_timer(host: Any, seeded: dict[str, Any], converge: Any) -> None:
    def next_elapse() -> str:
        return str(
            host.check_output(
                "systemctl show --property NextElapseUSecRealtime --value devpi-backup.timer"
            )
        )

    moved = converge({"devpi_backup_schedule": {"hour": 5, "minute": 45}})
    assert moved.returncode == 0, moved.tail()
    timer = host.file("/etc/systemd/system/devpi-backup.timer").content_string.splitlines()
    assert "OnCalendar=*-*-* 05:45:00" in timer
    assert " 05:45:00 " in next_elapse(), next_elapse()
    back = converge()
    assert back.returncode == 0, back.tail()
    assert " 03:17:00 " in next_elapse(), next_elapse()


def test_restoring_onto_a_host_with_data_is_refused_with_nothing_changed(
    host: Any, seeded: dict[str, Any], converge: Any
) -> None:
    before = fingerprint(host)
    run = converge({"devpi_restore_from": exports(host)[-1]})
    assert run.returncode != 0
    said = " ".join(run.output.split())
    assert "devpi_restore_from is set" in said and "changed nothing" in said, run.tail()
    assert run.recap["changed"] == 0
    assert fingerprint(host) == before


def test_switching_backups_off_removes_the_job_and_keeps_the_exports(
    host: Any, seeded: dict[str, Any], converge: Any
) -> None:
    kept = exports(host)
    off = converge({"devpi_backup_enabled": False})
    assert off.returncode == 0, off.tail()
    for path in (
        f"{BASE}/devpi-backup",
        "/etc/systemd/system/devpi-backup.service",
        "/etc/systemd/system/devpi-backup.timer",
        "/etc/systemd/system/timers.target.wants/devpi-backup.timer",
    ):
        assert not host.file(path).exists, path
    assert "devpi-backup" not in host.check_output("systemctl list-timers --all --no-pager")
    assert exports(host) == kept
    again = converge({"devpi_backup_enabled": False})
    assert again.recap["changed"] == 0, again.tail()
