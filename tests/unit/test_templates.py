# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The role's templates, rendered by Ansible with the role's defaults, parse and say the right things."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[2]


def render(tmp_path: Path, **extra: Any) -> Path:
    """Render the three templates into tmp_path with the given role variables."""
    result = run_playbook("render_templates.yml", {"render_dir": str(tmp_path), **extra})
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(
        tmp_path_factory.mktemp("rendered"),
        devpi_service_manager="launchd",
        devpi_base_dir="/Users/eblume/devpi",
        devpi_launchd_agents_dir="/Users/eblume/Library/LaunchAgents",
        devpi_launchd_stdout_path="/Users/eblume/Library/Logs/mcquack.devpi.out.log",
        devpi_launchd_stderr_path="/Users/eblume/Library/Logs/mcquack.devpi.err.log",
        devpi_ca_bundle="/etc/ssl/cert.pem",
        devpi_environment={"TZ": "Europe/Berlin", "ODD": 'a "quoted" & <tagged> value'},
        devpi_server_options={"indexer-backend": "null", "mirror-cache-expiry": 3600},
        devpi_outside_url="https://devpi.example.org",
    )


def test_plist_is_a_launchd_agent_with_the_seed_defaults(rendered: Path) -> None:
    job = plistlib.loads((rendered / "devpi.plist").read_bytes())
    assert job["Label"] == "mcquack.eblume.devpi"
    assert job["ProgramArguments"] == [
        "/Users/eblume/devpi/venv/bin/devpi-server",
        "-c",
        "/Users/eblume/devpi/devpi-server.yml",
    ]
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] is True
    assert job["StandardOutPath"] == "/Users/eblume/Library/Logs/mcquack.devpi.out.log"
    assert job["StandardErrorPath"] == "/Users/eblume/Library/Logs/mcquack.devpi.err.log"
    assert job["WorkingDirectory"] == "/Users/eblume/devpi"


def test_plist_values_have_launchd_types(rendered: Path) -> None:
    job = plistlib.loads((rendered / "devpi.plist").read_bytes())
    for limits in ("SoftResourceLimits", "HardResourceLimits"):
        # an integer, not a boolean (bool is an int subclass) nor a string
        assert isinstance(job[limits]["NumberOfFiles"], int)
        assert not isinstance(job[limits]["NumberOfFiles"], bool)
        assert job[limits]["NumberOfFiles"] == 4096
    env = job["EnvironmentVariables"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    assert env["REQUESTS_CA_BUNDLE"] == "/etc/ssl/cert.pem"
    assert env["TZ"] == "Europe/Berlin"
    assert env["ODD"] == 'a "quoted" & <tagged> value'
    assert env["LANG"].endswith("UTF-8")


def test_plist_holds_no_password(tmp_path: Path) -> None:
    out = render(tmp_path, devpi_service_manager="launchd", devpi_root_password="s3cret-Pw")
    for name in ("devpi.plist", "devpi.service", "devpi-server.yml"):
        assert "s3cret-Pw" not in (out / name).read_text()


def test_config_file_carries_every_option(rendered: Path) -> None:
    config = yaml.safe_load((rendered / "devpi-server.yml").read_text())
    assert config == {
        "devpi-server": {
            "host": "127.0.0.1",
            "port": 3141,
            "serverdir": "/Users/eblume/devpi/server-dir",
            "secretfile": "/Users/eblume/devpi/secret",
            "outside-url": "https://devpi.example.org",
            "indexer-backend": "null",
            "mirror-cache-expiry": 3600,
        }
    }


def test_systemd_unit_runs_unprivileged_and_hardened(tmp_path: Path) -> None:
    out = render(
        tmp_path,
        devpi_service_manager="systemd",
        devpi_ca_bundle="/etc/ssl/certs/ca-certificates.crt",
        devpi_environment={"ODD": 'say "hi" 100%'},
    )
    lines = (out / "devpi.service").read_text().splitlines()
    service = lines[lines.index("[Service]") :]
    assert "User=devpi" in service
    assert (
        "ExecStart=/var/lib/devpi/venv/bin/devpi-server -c /var/lib/devpi/devpi-server.yml"
        in service
    )
    assert "Restart=on-failure" in service
    assert "LimitNOFILE=4096" in service
    for hardening in (
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/devpi/server-dir",
        "PrivateTmp=true",
    ):
        assert hardening in service
    assert 'Environment="REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"' in service
    assert 'Environment="ODD=say \\"hi\\" 100%%"' in service
    assert "WantedBy=multi-user.target" in lines


def test_replication_changes_the_config_file_only(tmp_path: Path) -> None:
    """devpi_role goes into devpi-server.yml (devpi-server's own role and primary-url keys); the
    plist and the unit (both rendered every time) stay as a standalone host's, so a role change
    never reloads them."""
    common = {"devpi_service_manager": "launchd", "devpi_base_dir": "/Users/eblume/devpi"}
    for name in ("standalone", "replica", "primary"):
        (tmp_path / name).mkdir()
    standalone = render(tmp_path / "standalone", **common)
    replica = render(
        tmp_path / "replica",
        **common,
        devpi_role="replica",
        devpi_primary_url="http://devpi-primary.example.org:3141",
    )
    primary = render(tmp_path / "primary", **common, devpi_role="primary")
    for name in ("devpi.plist", "devpi.service"):
        assert (replica / name).read_bytes() == (standalone / name).read_bytes(), name
        assert (primary / name).read_bytes() == (standalone / name).read_bytes(), name
    config = yaml.safe_load((replica / "devpi-server.yml").read_text())["devpi-server"]
    assert config["role"] == "replica"
    assert config["primary-url"] == "http://devpi-primary.example.org:3141"
    config = yaml.safe_load((primary / "devpi-server.yml").read_text())["devpi-server"]
    assert config["role"] == "primary" and "primary-url" not in config
    config = yaml.safe_load((standalone / "devpi-server.yml").read_text())["devpi-server"]
    assert "role" not in config and "primary-url" not in config
