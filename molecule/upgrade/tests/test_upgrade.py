"""Upgrades, rollback, schema migration and root password rotation, in order, on one host.

molecule converged devpi-server 6.19.3 + devpi-web 5.1.0 (group_vars). Each test below runs
the role again with ansible-playbook against the same host, with other pins or passwords,
and checks what devpi serves and what is in its server-dir. The tests depend on their order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
BASE = "/var/lib/devpi"
SERVER_DIR = f"{BASE}/server-dir"
API = "http://127.0.0.1:3141"
OLD = {"devpi_server_version": "6.19.3", "devpi_web_version": "5.1.0"}
NEW = {"devpi_server_version": "6.20.3", "devpi_web_version": "5.1.1"}
ROOT_PASSWORD = "upgrade-Root-Pw-1"
ALICE_PASSWORD = "upgrade-Alice-Pw-2"
ROTATED_PASSWORD = "rotated-Root-Pw-3"

UPLOAD = r"""
import base64, hashlib, io, json, sys, urllib.request, zipfile

api, user, password = sys.argv[1:4]
name, version = "tinypkg", "1.0"
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": b"VALUE = 1\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = "".join(
    f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
    for path, data in files.items()
) + f"{dist}/RECORD,,\n"
wheel = io.BytesIO()
with zipfile.ZipFile(wheel, "w") as archive:
    for path, data in files.items():
        archive.writestr(path, data)
    archive.writestr(f"{dist}/RECORD", record)
login = urllib.request.Request(f"{api}/+login", json.dumps({"user": user, "password": password}).encode(), method="POST")
token = json.load(urllib.request.urlopen(login))["result"]["password"]
auth = base64.b64encode(f"{user}:{token}".encode()).decode()
boundary = "----tinypkg"
parts = [(":action", "file_upload"), ("name", name), ("version", version)]
body = b"".join(
    f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode() for key, value in parts
)
body += (
    f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{name}-{version}-py3-none-any.whl"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode() + wheel.getvalue() + f"\r\n--{boundary}--\r\n".encode()
upload = urllib.request.Request(f"{api}/{user}/dev/", body, method="POST")
upload.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
upload.add_header("X-Devpi-Auth", auth)
print(urllib.request.urlopen(upload).status)
"""

CLIENT_LOOP = r"""
import json, os, subprocess, sys, threading, time, urllib.request
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
        rc = subprocess.run(
            ["/var/tmp/loop-venv/bin/pip", "download", "--quiet", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--dest", "/var/tmp/loop-dl",
             "--index-url", "http://127.0.0.1:3141/root/pypi/+simple/", "six"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        result["installs"] += 1
        result["install_failures"] += rc != 0

threads = [threading.Thread(target=poll), threading.Thread(target=install)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
result["downtime_s"] = round(result["downtime_s"], 2)
json.dump(result, open(out, "w"))
"""


def converge(extra: dict[str, Any], *, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the role against the host with extra variables given in a 0600 file (never argv)."""
    vars_file = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "upgrade-extra-vars.json"
    vars_file.touch(mode=0o600)
    vars_file.write_text(json.dumps(extra))
    command = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(SCENARIO / "converge.yml"),
    ]
    command += ["-e", f"@{vars_file}"] + (["-vvv"] if verbose else [])
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "false", "ANSIBLE_NOCOLOR": "true"}
    # Failures go to stderr: keep both, in order, in .stdout.
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False
    )


def changed(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"devpi-upgrade\s+: ok=\d+\s+changed=(\d+)", result.stdout)
    assert match, result.stdout[-3000:]
    return int(match.group(1))


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


def logs_in(host: Any, user: str, password: str) -> bool:
    body = json.dumps({"user": user, "password": password})
    status = host.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -X POST -d '{body}' {API}/+login"
    )
    return bool(status == "200")


def data_is_intact(host: Any) -> None:
    assert logs_in(host, "alice", ALICE_PASSWORD)
    index = json.loads(
        host.check_output(f"curl -sSf -H 'Accept: application/json' {API}/alice/dev")
    )
    assert index["result"]["bases"] == ["root/pypi"]
    host.check_output("rm -rf /var/tmp/check-venv && python3 -m venv /var/tmp/check-venv")
    install = host.run(
        "/var/tmp/check-venv/bin/pip install --no-cache-dir --disable-pip-version-check "
        f"--index-url {API}/alice/dev/+simple/ tinypkg six"
    )
    assert install.rc == 0, install.stderr
    assert host.run(f"find {SERVER_DIR}/+files/root/pypi -name 'six-*.whl' | grep -q .").rc == 0, (
        "cached six is gone"
    )


@pytest.fixture(scope="module")
def seeded(host: Any) -> str:
    """alice's upload in alice/dev and six in the mirror cache, on the old release."""
    assert served_version(host) == OLD["devpi_server_version"]
    uploaded = host.run(f"python3 - {API} alice {ALICE_PASSWORD} <<'PY'\n{UPLOAD}\nPY")
    assert uploaded.rc == 0 and uploaded.stdout.strip() == "200", uploaded.stderr
    host.check_output("python3 -m venv /var/tmp/seed-venv")
    host.check_output(
        "/var/tmp/seed-venv/bin/pip install --no-cache-dir --disable-pip-version-check "
        f"--index-url {API}/root/pypi/+simple/ six"
    )
    data_is_intact(host)
    return fingerprint(host)


def test_a_version_that_does_not_exist_fails_before_touching_devpi(host: Any, seeded: str) -> None:
    result = converge({"devpi_server_version": "99.0.0", "devpi_web_version": "5.1.0"})
    assert result.returncode != 0
    assert "Could not build a venv with devpi-server==99.0.0" in result.stdout
    assert "nothing was switched" in result.stdout
    assert served_version(host) == "6.19.3"
    assert fingerprint(host) == seeded


def test_a_version_that_cannot_start_is_rolled_back(host: Any, seeded: str) -> None:
    # devpi-server 6.0.0 installs cleanly but dies at import (it lacks its ruamel.yaml dependency).
    result = converge({"devpi_server_version": "6.0.0", "devpi_web_version": "4.1.1"})
    assert result.returncode != 0
    assert "devpi-server 6.0.0" in result.stdout
    assert "which is serving again" in result.stdout
    assert "No module named 'ruamel'" in result.stdout
    assert served_version(host) == "6.19.3"
    assert host.file(f"{BASE}/venv").linked_to.endswith("devpi-server-6.19.3-web-5.1.0")
    assert fingerprint(host) == seeded


def test_a_schema_change_without_permission_rolls_back_and_says_what_to_set(
    host: Any, seeded: str
) -> None:
    # A server-dir marked with the exact text "6.19.3": 6.20.3 refuses it ("Incompatible state"),
    # 6.19.3 (exact match) still opens and exports it.
    host.check_output(f"printf %s 6.19.3 > {SERVER_DIR}/.serverversion")
    marked = fingerprint(host)
    result = converge(NEW)
    assert result.returncode != 0
    assert "Incompatible state" in result.stdout
    assert "devpi_allow_migration: true" in result.stdout
    assert served_version(host) == "6.19.3"
    assert fingerprint(host) == marked


def test_a_schema_change_with_permission_migrates_keeping_the_old_server_dir(
    host: Any, seeded: str
) -> None:
    result = converge({**NEW, "devpi_allow_migration": True})
    assert result.returncode == 0, result.stdout[-4000:]
    assert served_version(host) == "6.20.3"
    assert host.file(f"{SERVER_DIR}/.serverversion").content_string == "4"
    kept = host.check_output(f"ls -d {SERVER_DIR}.before-6.20.3-*").split()
    assert len(kept) == 1 and host.file(f"{kept[0]}/.serverversion").content_string == "6.19.3"
    assert host.run(f"ls -d {BASE}/export-*").rc != 0, (
        "the export is removed after a successful migration"
    )
    data_is_intact(host)
    assert changed(converge({**NEW, "devpi_allow_migration": True})) == 0


def test_a_plain_upgrade_keeps_data_with_one_restart_of_downtime(host: Any) -> None:
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
    assert result.returncode == 0, result.stdout[-4000:]
    load = json.loads(host.file("/var/tmp/loop.json").content_string)
    print(f"\nclient load across the upgrade: {json.dumps(load)}")
    assert served_version(host) == "6.20.3"
    data_is_intact(host)
    assert load["installs"] > 0 and load["polls"] > 0
    # The new venv was complete before the old process stopped: downtime is one restart.
    assert load["downtime_s"] < 15, load
    assert changed(converge(NEW)) == 0


def test_old_venvs_beyond_keep_are_removed(host: Any) -> None:
    venvs = sorted(host.check_output(f"ls {BASE}/venvs").split())
    assert "devpi-server-6.20.3-web-5.1.1" in venvs
    assert len(venvs) <= 2, venvs
    assert "devpi-server-6.0.0-web-4.1.1" not in venvs


def test_a_rotated_root_password_is_set_without_the_old_one(host: Any) -> None:
    rotated = {**NEW, "devpi_root_password": ROTATED_PASSWORD}
    result = converge(rotated, verbose=True)
    assert result.returncode == 0, result.stdout[-4000:]
    assert changed(result) >= 1
    assert logs_in(host, "root", ROTATED_PASSWORD)
    assert not logs_in(host, "root", ROOT_PASSWORD)
    data_is_intact(host)
    # -vvv shows every remote command line: the password is in none of them, nor in any output.
    assert "ESTABLISH SSH CONNECTION" in result.stdout
    assert ROTATED_PASSWORD not in result.stdout
    journal = host.run(f"journalctl --no-pager | grep -cF -- '{ROTATED_PASSWORD}'")
    assert journal.stdout.strip() == "0"
    found = host.run(
        f"grep -rlF -- '{ROTATED_PASSWORD}' /etc/systemd /var/log /tmp /var/tmp {BASE}/devpi-server.yml"
    )
    assert found.stdout.strip() == ""
    assert changed(converge(rotated)) == 0
