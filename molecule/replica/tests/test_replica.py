# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi's replication, in order, on two real systemd hosts (testinfra, run by molecule).

molecule converged devpi-primary (devpi_role: primary) and then devpi-replica (devpi_role:
replica, the primary's secret read from devpi-primary in the play), and ran the idempotence
check on both. The tests upload and create users on the primary and watch them reach the
replica, send writes to the replica, stop the primary, give the replica a wrong secret, and
finally promote the replica. They depend on their order.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra
from conftest import Converge, Devpi  # type: ignore[import-not-found]

from devpi_testclient import script

testinfra_hosts = ["devpi-replica"]

PRIMARY_URL = "http://10.213.17.2:3141"
ROOT_PASSWORD = "replica-Root-Pw-1"
EBLUME_PASSWORD = "replica-Eblume-Pw-2"
ALICE_PASSWORD = "replica-Alice-Pw-3"
SECRET = "/var/lib/devpi/secret"
# How long an upload may take to become installable through the replica.
LAG_LIMIT = 30.0
UPLOADS = 5

# Run on the replica before an upload (API INDEX PROJECT VERSION LIMIT), with the devpi test
# client (tools/devpi_testclient.py): wait until the version is on the replica's simple page
# and print the time it appeared (the test hosts share this machine's clock).
WAIT_FOR_VERSION = script(
    r"""
import sys, time
api, index, project, version, limit = *sys.argv[1:5], float(sys.argv[5])
replica = DevpiClient(api, timeout=5)
started = time.time()
while time.time() - started < limit:
    try:
        page = replica.simple_page(index, project)
        if f"-{version}-" in page or f"-{version}." in page:
            print(time.time())
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.05)
sys.exit(1)
"""
)


@pytest.fixture(scope="module")
def primary_host() -> Any:
    return testinfra.get_host(
        "ansible://devpi-primary", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


@pytest.fixture(scope="module")
def primary(primary_host: Any) -> Devpi:
    return Devpi(primary_host)


@pytest.fixture(scope="module")
def replica(host: Any) -> Devpi:
    return Devpi(host)


@pytest.fixture(scope="module")
def converge_replica() -> Any:
    """The scenario's converge limited to the replica, as an operator reruns one host."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    run = Converge(scenario / "converge.yml", "devpi-replica")
    return lambda extra=None: run(extra, "--limit", "devpi-replica")


def status(devpi: Devpi) -> dict[str, Any]:
    result: dict[str, Any] = devpi.get("/+status")["result"]
    return result


def serials_equal(primary: Devpi, replica: Devpi) -> bool:
    return bool(status(replica)["serial"] == status(primary)["serial"])


def words(text: str) -> str:
    """Output with its line wrapping (Ansible's YAML callback) undone."""
    return " ".join(text.split())


def sha256(host: Any, path: str) -> str:
    return str(host.check_output(f"sha256sum {path}").split()[0])


def test_the_primary_and_the_replica_run_their_roles_in_sync(
    host: Any, primary_host: Any, primary: Devpi, replica: Devpi
) -> None:
    assert status(primary)["role"] == "MASTER"
    replica_status = status(replica)
    assert replica_status["role"] == "REPLICA"
    assert replica_status["primary-url"] == PRIMARY_URL
    assert replica_status["replica-in-sync-at"] is not None
    assert replica_status["serial"] == status(primary)["serial"]
    assert replica_status["replication-errors"] == {}
    # The role and primary URL come from devpi-server.yml; the unit is the standalone's.
    config = host.file("/var/lib/devpi/devpi-server.yml").content_string
    assert "role: replica" in config and f"primary-url: {PRIMARY_URL}" in config
    assert "role: primary" in primary_host.file("/var/lib/devpi/devpi-server.yml").content_string
    assert "--role" not in host.file("/etc/systemd/system/devpi.service").content_string
    assert (
        json.loads(host.check_output("cat /var/lib/devpi/server-dir/.nodeinfo"))["role"]
        == "replica"
    )
    # The same secret on both, the replica's as devpi-server wants it.
    secret = host.file(SECRET)
    assert secret.user == "devpi" and secret.mode == 0o600
    assert sha256(host, SECRET) == sha256(primary_host, SECRET)
    # Users and indexes came through replication (the replica skipped declaring them).
    assert replica.login_status("eblume", EBLUME_PASSWORD) == 200
    assert replica.get("/eblume/dev")["result"]["bases"] == ["root/pypi"]


def test_a_no_op_converge_of_the_replica_is_one_probe(
    host: Any, replica: Devpi, converge_replica: Any
) -> None:
    pid = replica.main_pid()
    run = converge_replica()
    # The primary's secret is not read either: the running replica's primary answered it within
    # the last 90 s, so the secret in place is the primary's. The probe is the one module run.
    run.assert_no_op(
        "Declare users and indexes", "Read the primary's secret from devpi_primary_host"
    )
    assert "devpi_users and devpi_indexes are declared on the primary" in words(run.output)
    assert "replica-Root-Pw-1" not in run.output
    assert replica.main_pid() == pid
    print(f"no-op converge of the replica: {run.seconds:.1f} s")


def test_uploads_to_the_primary_install_through_the_replica(
    host: Any, primary_host: Any, primary: Devpi, replica: Devpi
) -> None:
    lags = []
    for n in range(1, UPLOADS + 1):
        version = f"1.{n}"
        out = f"/var/tmp/lag-{n}"
        argv = ["python3", "-c", WAIT_FOR_VERSION,
                replica.api, "eblume/dev", "lagpkg", version, str(LAG_LIMIT)]  # fmt: skip
        host.check_output(f"nohup {shlex.join(argv)} > {out} 2>&1 < /dev/null &")
        time.sleep(0.3)  # the watcher is polling before the upload starts
        # The test hosts share this machine's clock: the upload's answer on the primary and the
        # version's appearance on the replica are times on one clock.
        uploaded = primary.upload("eblume", EBLUME_PASSWORD, "eblume/dev", "lagpkg", version)
        for _attempt in range(int(LAG_LIMIT * 2) + 10):
            text = host.run(f"cat {out}").stdout.strip()
            if text:
                break
            time.sleep(0.5)
        assert text, f"{version} did not reach the replica within {LAG_LIMIT} s"
        lags.append(max(0.0, float(text) - uploaded))
    print(f"upload-to-replica lag over {UPLOADS} uploads: median {statistics.median(lags):.2f} s, "
          f"min {min(lags):.2f} s, max {max(lags):.2f} s")  # fmt: skip
    assert statistics.median(lags) < LAG_LIMIT
    result = replica.pip_install("eblume/dev", f"lagpkg==1.{UPLOADS}")
    assert result.rc == 0, result.stdout + result.stderr
    assert f"Successfully installed lagpkg-1.{UPLOADS}" in result.stdout


def test_a_user_created_on_the_primary_logs_in_on_the_replica(
    primary: Devpi, replica: Devpi, wait_for: Any
) -> None:
    primary.root_request("PUT", "/alice", {"password": ALICE_PASSWORD}, ROOT_PASSWORD)
    seconds = wait_for(lambda: replica.login_status("alice", ALICE_PASSWORD) == 200, 30)
    print(f"user alice logs in on the replica {seconds:.2f} s after her creation on the primary")
    assert replica.login_status("alice", "wrong") == 401


def test_writes_sent_to_the_replica_are_relayed_to_the_primary(
    host: Any, primary: Devpi, replica: Devpi
) -> None:
    """devpi relays a write to the primary and answers only once the change has come back."""
    replica.upload("eblume", EBLUME_PASSWORD, "eblume/dev", "viareplica", "1.0")
    # No wait: the replica returned after the change was replicated back from the primary.
    assert "viareplica" in primary.get("/eblume/dev")["result"]["projects"]
    assert "viareplica" in replica.get("/eblume/dev")["result"]["projects"]
    replica.root_request("PUT", "/bob", {"password": "replica-Bob-Pw-4"}, ROOT_PASSWORD)
    assert primary.login_status("bob", "replica-Bob-Pw-4") == 200
    headers = host.check_output(
        f"curl -s -D - -o /dev/null -X POST -d "
        f"{shlex.quote(json.dumps({'user': 'bob', 'password': 'replica-Bob-Pw-4'}))} {replica.api}/+login"
    )
    print("a login sent to the replica: " + " ".join(
        line for line in headers.splitlines() if line.lower().startswith(("http/", "x-devpi-proxy"))))  # fmt: skip
    assert "x-devpi-proxy: replica" in headers.lower()


def test_the_replica_serves_installs_while_the_primary_is_down(
    host: Any, primary_host: Any, primary: Devpi, replica: Devpi, wait_for: Any
) -> None:
    # six into the replica's mirror cache while the primary is up.
    assert replica.pip_install("root/pypi", "six").rc == 0
    pid = replica.main_pid()
    primary_host.check_output("systemctl stop devpi")
    try:
        assert primary.status("/+api") == 0
        private = replica.pip_install("eblume/dev", "lagpkg==1.1")
        assert private.rc == 0, private.stdout + private.stderr
        cached = replica.pip_install("root/pypi", "six")
        assert cached.rc == 0, cached.stdout + cached.stderr
        # A project nobody installed before: the replica asks PyPI itself (its mirror index).
        uncached = replica.pip_install("root/pypi", "iniconfig")
        print(f"uncached PyPI project through the replica, primary down: rc {uncached.rc}")
        assert uncached.rc != 0, "the replica fetched a project its mirror had not cached"
        # Writes need the primary.
        login = replica.login_status("eblume", EBLUME_PASSWORD)
        upload = host.run(
            shlex.join(["python3", "-c", "import urllib.request as u; u.urlopen(u.Request("
                        f"'{replica.api}/eblume/dev/', b'', method='POST'), timeout=60)"])
        )  # fmt: skip
        print(f"primary down: a login through the replica answers {login}; an upload: "
              f"{(upload.stderr.strip().splitlines() or ['ok'])[-1]}")  # fmt: skip
        assert login != 200
    finally:
        primary_host.check_output("systemctl start devpi")
    wait_for(lambda: primary.status("/+api") == 200, 90)
    primary.upload("eblume", EBLUME_PASSWORD, "eblume/dev", "afteroutage", "1.0")
    seconds = wait_for(lambda: serials_equal(primary, replica), 60)
    print(f"after the primary came back: serials equal {seconds:.1f} s after the next upload")
    assert replica.main_pid() == pid, "the replica caught up without a restart"
    assert replica.pip_install("eblume/dev", "afteroutage").rc == 0


def test_a_replica_with_a_wrong_secret_fails_fast_saying_so(
    host: Any, primary_host: Any, primary: Devpi, replica: Devpi, converge_replica: Any
) -> None:
    # An override, on purpose: a secret that is not the primary's.
    wrong = converge_replica({"devpi_shared_secret": "not-the-primary-secret-" + "x" * 24})
    print(f"converge with a wrong secret: rc {wrong.returncode} after {wrong.seconds:.1f} s")
    assert wrong.returncode != 0
    said = words(wrong.output)
    assert "refuses this replica" in said and f"secret {SECRET} is not the primary's" in said, (
        wrong.tail()
    )
    assert "403 Forbidden: failed fetching" in said
    assert "not-the-primary-secret" not in wrong.output
    # Fast: the wait ended on devpi's 403, well before devpi_replica_sync_timeout (120 s) ran out
    # (the converge around it restarts devpi, whose key derivation takes seconds).
    waited = float(re.search(r"seen after ([0-9.]+) s", said).group(1))  # type: ignore[union-attr]
    print(f"the refusal was seen {waited:.1f} s into the wait for sync")
    assert waited < 60
    # Back to the primary's secret (devpi_primary_host): in sync again.
    fixed = converge_replica()
    assert fixed.returncode == 0, fixed.tail()
    assert sha256(host, SECRET) == sha256(primary_host, SECRET)
    # What the converge waited for: the primary answers the replica, the serials are equal.
    assert status(replica)["primary-serial"] is not None
    assert serials_equal(primary, replica)


def test_the_replica_is_promoted_and_takes_uploads(
    host: Any, primary_host: Any, replica: Devpi, converge_replica: Any
) -> None:
    # The primary is lost; the replica becomes the primary.
    primary_host.check_output("systemctl stop devpi")
    before = json.loads(host.check_output("cat /var/lib/devpi/server-dir/.nodeinfo"))
    # The promotion entry point: devpi_role primary on the former replica.
    run = converge_replica({"devpi_role": "primary"})
    assert run.returncode == 0, run.tail()
    assert run.status["Check the replicated server-dir with devpi-fsck"] == "ok", run.tail()
    assert run.status.get("Run devpi-init as a replica of devpi_primary_url") in (None, "skipping")
    after = json.loads(host.check_output("cat /var/lib/devpi/server-dir/.nodeinfo"))
    assert after["role"] == "primary" and after["uuid"] == before["uuid"]
    assert status(replica)["role"] == "MASTER"
    # The data is intact and it takes writes itself.
    assert replica.login_status("alice", ALICE_PASSWORD) == 200
    assert replica.pip_install("eblume/dev", "lagpkg==1.3").rc == 0
    replica.upload("eblume", EBLUME_PASSWORD, "eblume/dev", "afterpromotion", "1.0")
    installed = replica.pip_install("eblume/dev", "afterpromotion")
    assert installed.rc == 0, installed.stdout + installed.stderr
    again = converge_replica({"devpi_role": "primary"})
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()
