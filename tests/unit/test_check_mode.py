# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A dry run (--check --diff) of playbooks/devpi.yml on the launchd path of a fresh host: it
completes, says what it would create, and creates nothing. The host is this machine with the
launchctl stand-in (tests/doubles/launchctl) on PATH and every path of the role in a temporary
directory, as a Mac user's home would be before the first converge. (The systemd path's dry run
runs on a fresh test host in the default scenario, and on the converged hosts of the default and
macos scenarios.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import free_port
from ansible_collections.mcquack.devpi.tests.unit.standin import use_launchctl_standin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform != "linux", reason="the launchctl stand-in needs Linux")
def test_a_dry_run_of_a_fresh_mac_says_what_it_would_create_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    use_launchctl_standin(tmp_path, monkeypatch)
    base = home / "devpi"
    agents = home / "Library" / "LaunchAgents"
    logs = home / "Library" / "Logs"
    role_vars = {
        "devpi_target_hosts": "localhost",
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "devpi_service_manager": "launchd",
        "devpi_base_dir": str(base),
        "devpi_launchd_agents_dir": str(agents),
        "devpi_launchd_stdout_path": str(logs / "mcquack.devpi.out.log"),
        "devpi_launchd_stderr_path": str(logs / "mcquack.devpi.err.log"),
        "devpi_listen_port": free_port(),  # nothing answers there, as on a fresh Mac
        "devpi_root_password": "dry-run-Root-Pw-1",
    }
    result = run_playbook("../../playbooks/devpi.yml", role_vars, "--check", "--diff")
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    venv = f"{base}/venvs/devpi-server-6.20.3-web-5.1.1"
    assert f"Would build {venv} with devpi-server==6.20.3 devpi-web==5.1.1." in said
    assert "Would start devpi." in said
    plist = agents / "mcquack.eblume.devpi.plist"
    for path in (base / "devpi-server.yml", plist):
        assert f"after: {path}" in said, path
    assert "<string>mcquack.eblume.devpi</string>" in said  # the plist's text, in the diff
    assert "dry-run-Root-Pw-1" not in result.stdout + result.stderr
    # Nothing was created, and launchd (the stand-in) was asked nothing that changes a job.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "home"]
    assert list(home.iterdir()) == []
