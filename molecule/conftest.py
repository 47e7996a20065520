# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Helpers shared by the scenarios' testinfra tests (molecule/<scenario>/tests/).

`Devpi(host)` talks to the devpi-server on a test host the way a user would: JSON reads, a
login, an upload, `pip install` through an index, all run on the host itself (devpi listens on
its loopback); requests and uploads with the devpi test client (tools/devpi_testclient.py, on
the import path through pyproject.toml's pytest pythonpath). `converge()` runs a scenario's
converge playbook again from the controller.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devpi_testclient import script

API = "http://127.0.0.1:3141"
REPO = Path(__file__).resolve().parents[1]
# The extra vars every scenario's playbooks get (.config/molecule/config.yml).
TESTHOST_VARS = Path(__file__).resolve().parent / "resources" / "vars" / "testhost.yml"

# Run on the host (its devpi listens on loopback) with the devpi test client's code
# (tools/devpi_testclient.py): a request as root, and an upload as twine makes it.
_ROOT_REQUEST = script(
    r"""
import json, sys
api, password, method, path, body = sys.argv[1:6]
root = DevpiClient(api, timeout=None).login("root", password)
print(json.dumps(root.call(method, path, json.loads(body))))
"""
)
_UPLOAD = script(
    r"""
import sys, time
api, user, password, index, name, version, summary = sys.argv[1:8]
DevpiClient(api, timeout=None).login(user, password).upload(index, name, version, summary)
print(time.time())
"""
)


class Devpi:
    """devpi-server on a test host, reached from inside that host."""

    def __init__(self, host: Any, api: str = API) -> None:
        self.host = host
        self.api = api

    def get(self, path: str) -> dict[str, Any]:
        """GET a JSON page (an index, a user, /+api)."""
        out = self.host.check_output(
            f"curl -sSf -H 'Accept: application/json' {shlex.quote(self.api + path)}"
        )
        result: dict[str, Any] = json.loads(out)
        return result

    def status(self, path: str, accept: str = "application/json") -> int:
        """The HTTP status of a GET; 0 when nothing answers."""
        out = self.host.run(
            f"curl -s -o /dev/null -w '%{{http_code}}' -H {shlex.quote('Accept: ' + accept)} "
            f"{shlex.quote(self.api + path)}"
        )
        return int(out.stdout.strip() or 0)

    def login_status(self, user: str, password: str) -> int:
        body = json.dumps({"user": user, "password": password})
        out = self.host.check_output(
            f"curl -s -o /dev/null -w '%{{http_code}}' -X POST -d {shlex.quote(body)} "
            f"{self.api}/+login"
        )
        return int(out)

    def root_request(self, method: str, path: str, body: Any, password: str) -> dict[str, Any]:
        """A request as root (logged in with password), as devpi-client makes it."""
        argv = ["python3", "-c", _ROOT_REQUEST, self.api, password, method, path, json.dumps(body)]
        result: dict[str, Any] = json.loads(self.host.check_output(shlex.join(argv)))
        return result

    def upload(
        self, user: str, password: str, index: str, name: str, version: str, summary: str = "test"
    ) -> float:
        """Upload a tiny wheel; the host's clock (time.time()) when devpi answered 200."""
        argv = ["python3", "-c", _UPLOAD, self.api, user, password, index, name, version, summary]
        return float(self.host.check_output(shlex.join(argv)))

    def pip_install(self, index: str, *requirements: str, venv: str = "/var/tmp/pip-check") -> Any:
        """`pip install` into a new venv through an index, no pip cache and no retries: the
        command's result (rc, stdout, stderr)."""
        self.host.check_output(f"rm -rf {venv} && python3 -m venv {venv}")
        return self.host.run(
            f"{venv}/bin/pip install --no-cache-dir --disable-pip-version-check --retries 0 "
            f"--index-url {self.api}/{index}/+simple/ {shlex.join(requirements)}"
        )

    def main_pid(self, unit: str = "devpi") -> str:
        return str(self.host.check_output(f"systemctl show --property MainPID --value {unit}"))


@pytest.fixture(scope="module")
def devpi(host: Any) -> Devpi:
    return Devpi(host)


class Converge:
    """The scenario's converge playbook, run again from the controller on the scenario's
    inventory with the test-host vars (as molecule's converge runs it), plus extra vars."""

    def __init__(self, playbook: Path, host_name: str) -> None:
        self.playbook = playbook
        self.host_name = host_name

    def argv(self, extra_vars: dict[str, Any] | None = None, *args: str) -> list[str]:
        """The ansible-playbook command line (extra vars in a 0600 file)."""
        argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(self.playbook)]
        argv += ["-e", f"@{TESTHOST_VARS}", *args]
        if extra_vars:
            # In a 0600 file, never on the command line: they may hold passwords.
            vars_file = (
                Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "converge-extra-vars.json"
            )
            vars_file.touch(mode=0o600)
            vars_file.chmod(0o600)
            vars_file.write_text(json.dumps(extra_vars))
            argv += ["-e", f"@{vars_file}"]
        return argv

    def __call__(self, extra_vars: dict[str, Any] | None = None, *args: str) -> ConvergeRun:
        env = {**os.environ, "ANSIBLE_FORCE_COLOR": "false", "ANSIBLE_NOCOLOR": "true"}
        argv = self.argv(extra_vars, *args)
        started = time.monotonic()
        proc = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False
        )
        return ConvergeRun(proc.returncode, proc.stdout, self.host_name, time.monotonic() - started)


# The role's steps after the plan, each one include, that a no-op converge skips as a whole.
NO_OP_SKIPPED = (
    "Bring what is not in place into place",
    "Restart devpi as planned and wait for it, recovering from a start that fails",
    "Make devpi_root_password the root password",
    "Make root/pypi the PyPI mirror devpi_root_pypi declares",
)


class ConvergeRun:
    def __init__(self, returncode: int, output: str, host_name: str, seconds: float) -> None:
        self.returncode = returncode
        self.output = output
        self.host_name = host_name
        self.seconds = seconds

    @property
    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counts (ok, changed, failed, ...) of the host."""
        for line in self.output.splitlines():
            if line.startswith(self.host_name + " ") and "ok=" in line:
                return {k: int(v) for k, v in (item.split("=") for item in line.split()[2:])}
        raise AssertionError(f"no recap line for {self.host_name}:\n{self.output[-2000:]}")

    @property
    def status(self) -> dict[str, str]:
        """Each role task's first result line word (ok, changed, skipping, ...), by task name."""
        return dict(
            re.findall(r"TASK \[mcquack\.devpi\.devpi : ([^\]]+)\][^\n]*\n(\w+)", self.output)
        )

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])

    def assert_no_op(self, *also_skipped: str) -> None:
        """The fast path: the run succeeded with nothing changed, the probe ran, and each step
        after the plan (one include each, plus also_skipped) was skipped as a whole."""
        assert self.returncode == 0, self.tail()
        assert self.recap["changed"] == 0, self.tail()
        status = self.status
        assert status["Read what is in place"] == "ok", self.tail()
        for include in (*NO_OP_SKIPPED, *also_skipped):
            assert status[include] == "skipping", include


@pytest.fixture(scope="module")
def converge(host: Any) -> Converge:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return Converge(scenario / "converge.yml", host.backend.get_hostname())


@pytest.fixture(scope="module")
def playbook_argv(converge: Converge) -> Callable[..., list[str]]:
    """playbook_argv(extra_vars): the scenario's converge as a command line, to run it in the
    background (and kill it) from a test."""
    return converge.argv


@pytest.fixture(scope="module")
def playbook(host: Any) -> Callable[..., ConvergeRun]:
    """playbook("playbooks/x.yml", extra_vars, *args): a playbook of the repository run on the
    scenario's inventory, with the test-host vars, as converge() runs the scenario's own."""
    name = host.backend.get_hostname()

    def run(path: str, extra_vars: dict[str, Any] | None = None, *args: str) -> ConvergeRun:
        return Converge(REPO / path, name)(extra_vars, *args)

    return run


@pytest.fixture(scope="module")
def entry_point(host: Any, playbook: Callable[..., ConvergeRun]) -> Callable[[str], ConvergeRun]:
    """entry_point("stop"): playbooks/devpi_<name>.yml (the role's tasks_from: <name>) on the
    scenario's host, as the operator runs it."""
    name = host.backend.get_hostname()
    return lambda which: playbook(f"playbooks/devpi_{which}.yml", {"devpi_target_hosts": name})


@pytest.fixture(scope="module")
def wait_for() -> Callable[[Callable[[], bool], float], float]:
    """wait_for(check, limit): seconds until check() is true, asking every 0.5 s; fails after
    limit seconds."""

    def wait(check: Callable[[], bool], limit: float) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > limit:
                raise AssertionError(f"not true within {limit} s")
            time.sleep(0.5)
        return time.monotonic() - started

    return wait


def unit_exposure(host: Any, unit: str) -> tuple[float, str, list[str]]:
    """`systemd-analyze security` of a loaded unit: its overall exposure, systemd's word for it,
    and the checks that still count against it."""
    text = host.check_output(f"systemd-analyze security --no-pager {unit}")
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+) (\w+)", text)
    assert match, text
    checks = json.loads(
        host.check_output(f"systemd-analyze security --no-pager --json=short {unit}")
    )
    open_checks = [c["name"] for c in checks if not c["set"] and float(c["exposure"] or 0) > 0]
    return float(match.group(1)), match.group(2), open_checks


@pytest.fixture(scope="module")
def exposure(host: Any) -> Callable[[str], tuple[float, str, list[str]]]:
    """exposure(unit): systemd-analyze security's score, word and open checks for the unit."""
    return lambda unit: unit_exposure(host, unit)
