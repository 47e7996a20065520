"""mcquack.devpi.devpi_probe: paths and service state, read without changing anything."""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

import pytest
from ansible_collections.mcquack.devpi.plugins.modules.devpi_probe import probe_path, probe_service

ROOT = Path(__file__).resolve().parents[4]


def test_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "devpi-server.yml"
    path.write_text("devpi-server: {}\n")
    path.chmod(0o640)
    assert probe_path(str(path)) == {
        "exists": True,
        "type": "file",
        "mode": "0640",
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "sha1": hashlib.sha1(b"devpi-server: {}\n").hexdigest(),
    }


def test_a_symlink_is_reported_not_followed(tmp_path: Path) -> None:
    (tmp_path / "venvs").mkdir()
    (tmp_path / "venv").symlink_to(tmp_path / "venvs")
    probed = probe_path(str(tmp_path / "venv"))
    assert probed["type"] == "link"
    assert probed["link_target"] == str(tmp_path / "venvs")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert probe_path(str(dangling))["type"] == "link"


def test_a_directory_and_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "server-dir").mkdir(mode=0o700)
    (tmp_path / "server-dir").chmod(0o700)
    assert probe_path(str(tmp_path / "server-dir"))["type"] == "directory"
    assert probe_path(str(tmp_path / "server-dir"))["mode"] == "0700"
    assert probe_path(str(tmp_path / "missing")) == {"exists": False}


@pytest.mark.parametrize(("active", "enabled"), [(0, 0), (3, 1)])
def test_systemd_unit_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, active: int, enabled: int
) -> None:
    # A systemctl whose answer depends on the subcommand, like the real is-active/is-enabled.
    tool = tmp_path / "systemctl"
    tool.write_text(f'#!/bin/sh\n[ "$1" = is-active ] && exit {active}\nexit {enabled}\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert probe_service("devpi", None) == {"active": active == 0, "enabled": enabled == 0}


def test_launchd_job_not_loaded_with_the_launchctl_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "launchctl").symlink_to(ROOT / "tests/doubles/launchctl")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("LAUNCHCTL_STANDIN_STATE", str(tmp_path / "state"))
    assert probe_service(None, f"gui/{os.getuid()}/mcquack.eblume.devpi") == {"loaded": False}


def test_no_service_asked_for() -> None:
    assert probe_service(None, None) is None


def test_a_missing_service_tool_means_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert probe_service("devpi", None) == {"active": False, "enabled": False}
