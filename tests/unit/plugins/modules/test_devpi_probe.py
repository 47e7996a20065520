"""mcquack.devpi.devpi_probe: paths, service state and devpi-server's answers, read without
changing anything (the server part against a real devpi-server)."""

from __future__ import annotations

import hashlib
import http.server
import os
import pwd
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mcquack.devpi.plugins.modules.devpi_probe import (
    probe_path,
    probe_server,
    probe_service,
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


@pytest.mark.parametrize(("active", "enabled"), [(0, 0), (3, 1)])
def test_systemd_unit_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, active: int, enabled: int, module: Any
) -> None:
    # A systemctl whose answer depends on the subcommand, like the real is-active/is-enabled.
    tool = tmp_path / "systemctl"
    tool.write_text(f'#!/bin/sh\n[ "$1" = is-active ] && exit {active}\nexit {enabled}\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert probe_service(module, "devpi", None) == {"active": active == 0, "enabled": enabled == 0}


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
