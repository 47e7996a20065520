# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A dry run (--check --diff) of playbooks/devpi.yml: on a fresh host it completes, says what it
would create and creates nothing; on the converged host it has nothing to change.

The fresh host is a second throwaway systemd test host (tests/testhost/testhost.py), booted for
this module and given the scenario's own inventory settings (root password, users, indexes).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
TESTHOST = REPO / "tests/testhost/testhost.py"
FRESH = "devpi-dryrun"
FRESH_NET = 19


@pytest.fixture(scope="module")
def fresh_inventory() -> Iterator[Path]:
    """An inventory of a freshly booted test host that no converge has touched."""
    up = subprocess.run(
        [str(TESTHOST), "up", FRESH, "--net", str(FRESH_NET)],
        capture_output=True,
        text=True,
        check=True,
    )
    host = json.loads(up.stdout)
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "dry-run-inventory.yml"
    ssh_args = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes"
    connection = {
        "ansible_host": host["address"],
        "ansible_port": host["port"],
        "ansible_user": host["user"],
        "ansible_private_key_file": host["identity_file"],
        "ansible_ssh_common_args": ssh_args,
    }
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {FRESH: connection}}}))
    try:
        yield inventory
    finally:
        subprocess.run([str(TESTHOST), "down", FRESH], capture_output=True, check=False)


def dry_run(playbook: Callable[..., Any], target: str, *inventories: Path) -> Any:
    extra = [arg for inventory in inventories for arg in ("-i", str(inventory))]
    return playbook(
        "playbooks/devpi.yml", {"devpi_target_hosts": target}, "--check", "--diff", *extra
    )


def test_a_dry_run_on_a_fresh_host_says_what_it_would_create_and_creates_nothing(
    fresh_inventory: Path, playbook: Callable[..., Any]
) -> None:
    run = dry_run(playbook, FRESH, fresh_inventory)
    assert run.returncode == 0, run.tail()
    recap = next(
        line for line in run.output.splitlines() if line.startswith(FRESH + " ") and "ok=" in line
    )
    changed = int(recap.split("changed=")[1].split()[0])
    assert changed >= 8, recap  # account, directories, files, venv, devpi-init, the start
    said = " ".join(run.output.split())
    venv = "/var/lib/devpi/venvs/devpi-server-6.20.3-web-5.1.1"
    assert f"Would build {venv} with devpi-server==6.20.3 devpi-web==5.1.1." in said
    assert "Would start devpi." in said
    # --diff shows the files it would write, with their text.
    for path in ("/var/lib/devpi/devpi-server.yml", "/etc/systemd/system/devpi.service"):
        assert f"after: {path}" in said, path
    assert (
        "ExecStart=/var/lib/devpi/venv/bin/devpi-server -c /var/lib/devpi/devpi-server.yml" in said
    )
    # ... and no password in any of it.
    assert "molecule-Root-Pw-1" not in run.output
    # Nothing on the host changed.
    untouched = subprocess.run(
        [str(TESTHOST), "exec", FRESH, "--", "sh", "-c",
         "! id devpi && test ! -e /var/lib/devpi && test ! -e /etc/systemd/system/devpi.service"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr


def test_a_dry_run_on_the_converged_host_has_nothing_to_change(
    host: Any, playbook: Callable[..., Any], devpi: Any
) -> None:
    pid = devpi.main_pid()
    run = dry_run(playbook, host.backend.get_hostname())
    assert run.returncode == 0, run.tail()
    assert run.recap["changed"] == 0, run.tail()
    assert devpi.main_pid() == pid
