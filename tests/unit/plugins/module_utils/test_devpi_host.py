# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi's devpi_host: who listens on devpi's port, whether the server answering is the
devpi of this server-dir, and when a start cannot succeed.

Against real parts: a real devpi-server 6.20.3 (its process, port and server-dir), a real
impostor (tools/devpi_impostor.py, in this test process: it answers /+api as devpi does and
records what it is sent), this machine's /proc and ps, and a crash-looping job run by the launchctl stand-in
(tests/doubles/launchctl, which runs real processes)."""

from __future__ import annotations

import json
import os
import plistlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_host import (
    LogWatch,
    StartWatch,
    describe_holders,
    identity_problem,
    listening_inodes,
    pid_listens,
    port_holders,
)
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    RunModule,
    free_port,
)
from ansible_collections.mcquack.devpi.tests.unit.standin import use_launchctl_standin

from devpi_impostor import Impostor

ROOT = Path(__file__).resolve().parents[4]
LINUX = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


@pytest.fixture
def module() -> Any:
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    server = Impostor(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@LINUX
def test_the_devpi_process_is_found_listening_on_its_port(devpi: DevpiServer, module: Any) -> None:
    port = int(devpi.url.rsplit(":", 1)[1])
    assert listening_inodes(port)
    assert pid_listens(module, devpi.pid, port) is True
    assert pid_listens(module, os.getpid(), port) is False
    assert port_holders(module, port) == [devpi.pid]
    held = describe_holders(module, port)
    assert held.startswith(f"port {port} is held by PID {devpi.pid} (")
    assert "devpi-server" in held


def test_the_devpi_of_this_server_dir_is_recognised_by_its_uuid(
    devpi: DevpiServer, module: Any, tmp_path: Path
) -> None:
    status = devpi.request("GET", "/+status")[1]["result"]
    nodeinfo = devpi.server_dir / ".nodeinfo"
    assert identity_problem(module, devpi.url, status, nodeinfo=str(nodeinfo)) is None
    other = tmp_path / ".nodeinfo"
    other.write_text(json.dumps({"role": "standalone", "uuid": "0" * 32}))
    problem = identity_problem(module, devpi.url, status, nodeinfo=str(other))
    assert problem is not None
    assert f"names server uuid {status['uuid']!r}, not this server-dir's {'0' * 32!r}" in problem
    assert problem.endswith("No password or token was sent to it.")


@LINUX
def test_an_impostor_on_the_port_is_named_with_its_pid_and_command(
    devpi: DevpiServer, module: Any, impostor: Impostor
) -> None:
    url = f"http://127.0.0.1:{impostor.server_address[1]}"
    nodeinfo = str(devpi.server_dir / ".nodeinfo")
    problem = identity_problem(module, url, None, nodeinfo=nodeinfo)
    assert problem is not None
    assert problem.startswith(f"Something other than this host's devpi answers {url}: ")
    assert "it does not answer /+status as devpi-server does" in problem
    assert f"is held by PID {os.getpid()} (" in problem  # this test process, with its command


@pytest.mark.skipif(sys.platform != "linux", reason="the launchctl stand-in needs Linux")
def test_a_job_that_keeps_exiting_ends_the_wait_with_its_log_and_the_port_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, impostor: Impostor
) -> None:
    """devpi's own words for a taken port, from a job that exits with them (under the launchctl
    stand-in, with KeepAlive): the watch names the failure and what holds the port."""
    port = impostor.server_address[1]
    bin_dir = use_launchctl_standin(tmp_path, monkeypatch)
    log = tmp_path / "err.log"
    label = "test.mcquack.crashing"
    plist = tmp_path / f"{label}.plist"
    said = "OSError: [Errno 98] error while attempting to bind on address: address already in use"
    plist.write_bytes(
        plistlib.dumps(
            {
                "Label": label,
                "ProgramArguments": [
                    "/bin/sh",
                    "-c",
                    f"sleep 0.2; echo 'Address already in use: {said}' >&2; exit 1",
                ],
                "KeepAlive": True,
                "StandardErrorPath": str(log),
            }
        )
    )
    target = f"gui/{os.getuid()}/{label}"
    with patch_module_args({}):
        runner = AnsibleModule(argument_spec={})
    watch = StartWatch(runner, f"http://127.0.0.1:{port}", target, LogWatch(runner, None, str(log)))
    rc, _out, err = runner.run_command(
        [str(bin_dir / "launchctl"), "bootstrap", f"gui/{os.getuid()}", str(plist)]
    )
    assert rc == 0, err
    try:
        started = time.monotonic()
        reason = None
        while reason is None and time.monotonic() - started < 15:
            time.sleep(0.5)
            reason = watch.fatal()
        assert reason is not None, "the watch never saw the job fail"
        assert time.monotonic() - started < 10
        assert reason.startswith(f"{target} keeps exiting: Address already in use")
        assert f"is held by PID {os.getpid()}" in reason
    finally:
        runner.run_command([str(bin_dir / "launchctl"), "bootout", target])


def test_a_start_that_is_still_under_way_is_not_fatal(tmp_path: Path, module: Any) -> None:
    log = tmp_path / "err.log"
    log.write_text("Address already in use (an old line, before this start)\n")
    watch = StartWatch(module, "http://127.0.0.1:9", None, LogWatch(module, None, str(log)))
    assert watch.fatal() is None
    with log.open("a") as out:
        out.write("2026-12-04 12:00:00,000 INFO  [main] Loading node info from ...\n")
    assert watch.fatal() is None
    with log.open("a") as out:
        out.write("Incompatible state: server 6.20.3 cannot run serverdir x\n")
    reason = watch.fatal()
    assert (
        reason
        == "devpi-server cannot start: Incompatible state: server 6.20.3 cannot run serverdir x"
    )


def test_the_probe_sends_no_password_to_an_impostor_and_names_it(
    devpi: DevpiServer, impostor: Impostor, run_module: RunModule
) -> None:
    url = f"http://127.0.0.1:{impostor.server_address[1]}"
    run = run_module(
        "devpi_probe",
        {
            "url": url,
            "login_password": "the-root-password",
            "nodeinfo": str(devpi.server_dir / ".nodeinfo"),
        },
    )
    server = run.result["server"]
    assert server["answers"] is False and server["impostor"] is True
    assert "login" not in server
    assert server["error"].startswith(f"Something other than this host's devpi answers {url}")
    assert not [seen for seen in impostor.seen if seen.startswith("POST")], impostor.seen
    assert "the-root-password" not in run.stdout + run.stderr
    # The real devpi of that server-dir is trusted with it.
    real = run_module(
        "devpi_probe",
        {
            "url": devpi.url,
            "login_password": devpi.root_password,
            "nodeinfo": str(devpi.server_dir / ".nodeinfo"),
        },
    )
    assert real.result["server"]["answers"] and real.result["server"]["login"] is True


def test_the_modules_send_no_password_to_an_impostor(
    devpi: DevpiServer, impostor: Impostor, run_module: RunModule
) -> None:
    nodeinfo = str(devpi.server_dir / ".nodeinfo")
    url = f"http://127.0.0.1:{impostor.server_address[1]}"
    args = {"login_password": "the-root-password", "nodeinfo": nodeinfo, "name": "someone"}
    for module in ("devpi_user", "devpi_index"):
        name = "someone" if module == "devpi_user" else "someone/dev"
        run = run_module(module, {**args, "url": url, "name": name})
        assert run.failed, run.result
        assert run.msg.startswith(f"Something other than this host's devpi answers {url}")
    assert not [seen for seen in impostor.seen if not seen.startswith("GET ")], impostor.seen
    # The devpi of that server-dir gets the password and answers.
    real = run_module("devpi_user", {**args, "url": devpi.url, "login_password": devpi.root_password,
                                     "state": "absent"})  # fmt: skip
    assert not real.failed, real.result
