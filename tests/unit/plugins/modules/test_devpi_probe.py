# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi.devpi_probe: paths, service state and devpi-server's answers, read without
changing anything (the server part against a real devpi-server)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pwd
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import DevpiClient
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_host import (
    LogWatch,
    parse_launchctl_print,
    parse_systemctl_show,
    systemd_states,
)
from ansible_collections.mcquack.devpi.plugins.modules.devpi_probe import (
    REFUSAL,
    probe_nodeinfo,
    probe_path,
    probe_server,
    probe_service,
    probe_sync,
    replica_summary,
)
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    RunModule,
    free_port,
)

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def module() -> Any:
    """A real AnsibleModule: its run_command, get_bin_path and digest_from_file are what the
    probe uses."""
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


def test_a_regular_file(tmp_path: Path, module: Any) -> None:
    path = tmp_path / "devpi-server.yml"
    path.write_text("devpi-server: {}\n")
    path.chmod(0o640)
    assert probe_path(module, str(path)) == {
        "exists": True,
        "type": "file",
        "mode": "0640",
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "sha1": hashlib.sha1(b"devpi-server: {}\n").hexdigest(),
    }


def test_a_symlink_is_reported_not_followed(tmp_path: Path, module: Any) -> None:
    (tmp_path / "venvs").mkdir()
    (tmp_path / "venv").symlink_to(tmp_path / "venvs")
    probed = probe_path(module, str(tmp_path / "venv"))
    assert probed["type"] == "link"
    assert probed["link_target"] == str(tmp_path / "venvs")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert probe_path(module, str(dangling))["type"] == "link"


def test_a_directory_and_a_missing_path(tmp_path: Path, module: Any) -> None:
    (tmp_path / "server-dir").mkdir(mode=0o700)
    (tmp_path / "server-dir").chmod(0o700)
    assert probe_path(module, str(tmp_path / "server-dir"))["type"] == "directory"
    assert probe_path(module, str(tmp_path / "server-dir"))["mode"] == "0700"
    assert probe_path(module, str(tmp_path / "missing")) == {"exists": False}


# What `systemctl show --property=LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts
# -- ssh.service systemd-journald.service nothere.service apt-daily.timer` printed on a Debian 12
# test host (systemd 252): one block per unit in the order asked; a timer has no MainPID or
# NRestarts, a unit that does not exist is "not-found" with an empty UnitFileState.
SYSTEMCTL_SHOW = (ROOT / "tests/unit/fixtures/systemctl-show.txt").read_text()


def test_one_systemctl_show_reads_every_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any
) -> None:
    tool = tmp_path / "systemctl"
    tool.write_text(
        f"#!/bin/sh\necho \"$*\" >> {tmp_path}/calls\ncat <<'EOF'\n{SYSTEMCTL_SHOW}EOF\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    units = {"ssh": "ssh.service", "journal": "systemd-journald.service",
             "gone": "nothere.service", "timer": "apt-daily.timer"}  # fmt: skip
    ok = {"crashed": False, "restarts": 0}
    assert systemd_states(module, units) == {
        "ssh": {"loaded": True, "active": True, "enabled": True, "pid": 37, **ok},
        "journal": {"loaded": True, "active": True, "enabled": True, "pid": 17, **ok},
        "gone": {"loaded": False, "active": False, "enabled": False, "pid": None, **ok},
        "timer": {"loaded": True, "active": True, "enabled": True, "pid": None, **ok},
    }
    # One call for all of them.
    assert (tmp_path / "calls").read_text().splitlines() == [
        "show --property=LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts -- "
        "ssh.service systemd-journald.service nothere.service apt-daily.timer"
    ]


def test_a_systemctl_answer_that_does_not_fit_means_not_running() -> None:
    assert parse_systemctl_show(SYSTEMCTL_SHOW, 3) == []
    assert len(parse_systemctl_show(SYSTEMCTL_SHOW, 4)) == 4


def test_launchctl_print_gives_the_state_and_pid() -> None:
    printed = (
        "gui/501/mcquack.eblume.devpi = {\n\tactive count = 1\n\tpath = /Users/eblume/Library/"
        "LaunchAgents/mcquack.eblume.devpi.plist\n\tstate = running\n\n\tprogram = "
        "/Users/eblume/devpi/venv/bin/devpi-server\n\truns = 2\n\tpid = 4242\n"
        "\tlast exit code = 0\n}\n"
    )
    assert parse_launchctl_print(printed) == {
        "loaded": True, "active": True, "enabled": True, "pid": 4242, "crashed": False, "restarts": 2,
    }  # fmt: skip
    waiting = printed.replace("state = running", "state = not running").replace(
        "\tpid = 4242\n", ""
    )
    assert parse_launchctl_print(waiting)["active"] is False
    assert parse_launchctl_print(waiting)["pid"] is None


def test_launchd_job_not_loaded_with_the_launchctl_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "launchctl").symlink_to(ROOT / "tests/doubles/launchctl")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("LAUNCHCTL_STANDIN_STATE", str(tmp_path / "state"))
    assert probe_service(module, None, f"gui/{os.getuid()}/mcquack.eblume.devpi") == {
        "loaded": False
    }


def test_no_service_asked_for(module: Any) -> None:
    assert probe_service(module, None, None) is None


def test_a_missing_service_tool_means_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert probe_service(module, "devpi", None) == {"active": False, "enabled": False}


def without_seconds(probed: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(probed.pop("seconds"), float)
    return probed


def test_devpi_answers_and_the_root_password_logs_in(devpi: DevpiServer) -> None:
    assert without_seconds(probe_server(devpi.url, "root", devpi.root_password, 5)) == {
        "answers": True,
        "login": True,
    }
    assert without_seconds(probe_server(devpi.url, "root", "not-the-root-password", 5)) == {
        "answers": True,
        "login": False,
    }
    assert without_seconds(probe_server(devpi.url, "root", None, 5)) == {"answers": True}


def test_waiting_stops_at_the_first_answer(devpi: DevpiServer) -> None:
    probed = probe_server(devpi.url, "root", None, 5, wait=30)
    assert probed["answers"] is True
    assert probed["seconds"] < 5


def test_waiting_keeps_asking_for_the_whole_wait() -> None:
    started = time.monotonic()
    probed = probe_server(f"http://127.0.0.1:{free_port()}", "root", "secret", 5, wait=2)
    took = time.monotonic() - started
    assert probed["answers"] is False
    # seconds is rounded to 0.01
    assert 1.8 <= probed["seconds"] <= took + 0.005 < 4
    assert "login" not in probed


def test_nothing_listening_means_no_answer_and_no_login() -> None:
    probed = probe_server(f"http://127.0.0.1:{free_port()}", "root", "secret", 5)
    assert probed["answers"] is False
    assert probed["seconds"] < 1
    assert "cannot reach devpi-server" in probed["error"]
    assert "login" not in probed


class _NotDevpi(http.server.BaseHTTPRequestHandler):
    """Some other web server on the port: HTML for every GET, and it notes every POST."""

    posts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        body = b"<html>not devpi</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _NotDevpi.posts.append(self.rfile.read(length).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_devpi() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotDevpi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_password_is_not_sent_to_a_server_that_is_not_devpi(not_devpi: str) -> None:
    _NotDevpi.posts.clear()
    probed = probe_server(not_devpi, "root", "secret", 5)
    assert probed["answers"] is False
    assert "not JSON" in probed["error"]
    assert _NotDevpi.posts == []


def test_the_module_reports_the_server_and_keeps_the_password_out(
    devpi: DevpiServer, run_module: RunModule, tmp_path: Path
) -> None:
    args = {
        "paths": [str(tmp_path)],
        "url": devpi.url,
        "login_password": devpi.root_password,
    }
    run = run_module("devpi_probe", args)
    assert not run.failed and not run.changed, run.result
    assert without_seconds(run.result["server"]) == {"answers": True, "login": True}
    assert run.result["paths"][str(tmp_path)]["type"] == "directory"
    assert devpi.root_password not in run.stdout + run.stderr
    assert "service" not in run.result

    without_url = run_module("devpi_probe", {"paths": []})
    assert "server" not in without_url.result

    bad = run_module("devpi_probe", {"url": "ftp://127.0.0.1/"})
    assert bad.failed
    assert "url must be an http:// or https:// URL" in bad.msg


def test_indexes_are_compared_with_their_options(devpi: DevpiServer) -> None:
    devpi.root(
        "PUT",
        "/root/probe-mirror",
        {"type": "mirror", "mirror_url": "https://pypi.org/simple/", "volatile": False},
    )
    probed = probe_server(
        devpi.url,
        "root",
        None,
        5,
        indexes={
            "root/probe-mirror": {
                "mirror_no_project_list": True,
                "mirror_url": "https://pypi.org/simple/",
            },
            "root/absent": {"type": "mirror"},
        },
    )
    assert probed["indexes"] == {
        "root/probe-mirror": {"exists": True, "changes": {"mirror_no_project_list": True}},
        "root/absent": {"exists": False, "changes": {"type": "mirror"}},
    }
    devpi.root("PATCH", "/root/probe-mirror", {
        "type": "mirror", "mirror_url": "https://pypi.org/simple/", "volatile": False,
        "mirror_no_project_list": True,
    })  # fmt: skip
    again = probe_server(
        devpi.url, "root", None, 5, indexes={"root/probe-mirror": {"mirror_no_project_list": "yes"}}
    )
    assert again["indexes"] == {"root/probe-mirror": {"exists": True, "changes": {}}}


def test_an_index_option_that_cannot_be_compared_is_reported(devpi: DevpiServer) -> None:
    probed = probe_server(
        devpi.url, "root", None, 5, indexes={"root/pypi": {"mirror_cache_expiry": "soon"}}
    )
    assert "indexes" not in probed
    assert (
        probed["indexes_error"] == "index option mirror_cache_expiry must be an integer, got 'soon'"
    )


def test_indexes_are_not_read_from_a_server_that_does_not_answer() -> None:
    probed = probe_server(
        f"http://127.0.0.1:{free_port()}", "root", None, 5, indexes={"root/pypi": {}}
    )
    assert probed["answers"] is False
    assert "indexes" not in probed


# --- Replication: .nodeinfo and the wait for a replica to reach its primary's serial ---------


def test_the_nodeinfo_role_is_read(tmp_path: Path) -> None:
    info = tmp_path / ".nodeinfo"
    assert probe_nodeinfo(str(info)) == {"exists": False}
    info.write_text('{"role": "replica", "uuid": "x", "masterurl": "http://primary:3141"}')
    assert probe_nodeinfo(str(info)) == {"exists": True, "role": "replica"}
    info.write_text("not json")
    assert probe_nodeinfo(str(info))["error"]


class _Status(http.server.BaseHTTPRequestHandler):
    """A devpi whose /+status result is the server's `result` (a test sets it)."""

    def do_GET(self) -> None:
        body = json.dumps({"type": "status", "result": self.server.result}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]]:
    """status_server(result): the URL of a server answering /+status with result, and that dict
    (changed in place by the test)."""
    servers: list[http.server.HTTPServer] = []

    def start(result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
        server.result = result  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", result

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_replica_that_heard_from_its_primary_at_its_serial_is_in_sync_at_once(
    status_server: Any,
) -> None:
    primary, _state = status_server({"role": "MASTER", "serial": 7})
    replica, _state = status_server({"role": "REPLICA", "serial": 7, "primary-serial": 7})
    synced = probe_sync(DevpiClient(replica), DevpiClient(primary), wait=10)
    assert synced["in_sync"] is True and synced["refused"] is False
    assert synced["serial"] == synced["primary_serial"] == 7
    assert synced["seconds"] < 2


def test_a_replica_with_the_data_that_never_heard_from_its_primary_is_not_in_sync(
    status_server: Any,
) -> None:
    """Its serial was reached before this start; refused since, it has no primary-serial."""
    primary, _state = status_server({"role": "MASTER", "serial": 7})
    replica, _state = status_server({"role": "REPLICA", "serial": 7, "primary-serial": None})
    synced = probe_sync(DevpiClient(replica), DevpiClient(primary), wait=1)
    assert synced["in_sync"] is False
    assert synced["serial"] == synced["primary_serial"] == 7


def test_a_replica_behind_waits_the_whole_wait_and_names_both_serials(
    devpi: DevpiServer, status_server: Any
) -> None:
    primary, _state = status_server({"role": "MASTER", "serial": 10**6})
    started = time.monotonic()
    synced = probe_sync(DevpiClient(devpi.url), DevpiClient(primary), wait=1)
    assert synced["in_sync"] is False and synced["refused"] is False
    assert synced["primary_serial"] == 10**6 and synced["serial"] < 10**6
    assert 0.7 <= time.monotonic() - started < 3


def test_a_replica_catching_up_is_waited_for(status_server: Any) -> None:
    primary, _state = status_server({"role": "MASTER", "serial": 9})
    replica, state = status_server({"role": "REPLICA", "serial": 3, "primary-serial": 9})
    threading.Timer(0.5, lambda: state.update(serial=9)).start()
    synced = probe_sync(DevpiClient(replica), DevpiClient(primary), wait=10)
    assert synced["in_sync"] is True and 0.4 <= synced["seconds"] < 3


def test_a_primary_that_does_not_answer_is_named(devpi: DevpiServer) -> None:
    synced = probe_sync(
        DevpiClient(devpi.url), DevpiClient(f"http://127.0.0.1:{free_port()}"), wait=1
    )
    assert synced["in_sync"] is False
    assert synced["error"].startswith("the primary: ")
    assert "primary_serial" not in synced


def test_a_refusal_in_the_log_ends_the_wait_at_once(
    status_server: Any, module: Any, tmp_path: Path
) -> None:
    """What devpi logs when the primary answers its changelog with 403 (secrets differ);
    lines written before the watch began are not counted."""
    primary, _state = status_server({"role": "MASTER", "serial": 7})
    replica, _state = status_server({"role": "REPLICA", "serial": 7, "primary-serial": None})
    log = tmp_path / "devpi.err.log"
    log.write_text(f"ERROR [REP] {REFUSAL} http://old/+changelog/1-\n")
    watch = LogWatch(module, None, str(log))
    assert watch.newest(REFUSAL) is None
    line = f"2026-12-02 03:14:42,730 ERROR [REP] {REFUSAL} {primary}/+changelog/8-?initial_fetch"
    with log.open("a") as f:
        f.write(line + "\n")
    started = time.monotonic()
    synced = probe_sync(DevpiClient(replica), DevpiClient(primary), wait=60, watch=watch)
    assert synced["refused"] is True and synced["in_sync"] is False
    assert synced["refusal"] == line
    assert time.monotonic() - started < 5


def test_a_replica_summary_says_how_long_ago_the_primary_answered() -> None:
    status = {
        "role": "REPLICA",
        "serial": 12,
        "primary-serial": 12,
        "update-from-primary-at": 1000.0,
    }
    assert replica_summary(status, 1004.25) == {
        "serial": 12,
        "primary_serial": 12,
        "heard_from_primary_s": 4.25,
    }
    never = {"role": "REPLICA", "serial": 3, "primary-serial": None, "update-from-primary-at": None}
    assert replica_summary(never, 1000.0)["heard_from_primary_s"] is None
    assert replica_summary({"role": "MASTER", "serial": 12}, 1000.0) == {}


def test_the_replica_status_of_a_standalone_server_is_empty(devpi: DevpiServer) -> None:
    probed = probe_server(devpi.url, "root", None, 5, replica_status=True)
    assert probed["answers"] is True and probed["replica"] == {}
