"""The role's input checks (tasks/validate.yml): what argument_specs cannot say, refused with a
message that names the variable, every failing check at once, before anything is changed."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook


def check(**role_vars: Any) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = run_playbook("validate_inputs.yml", role_vars)
    return result


def test_the_role_defaults_pass() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mirror_options_a_user_would_set_pass() -> None:
    result = check(devpi_root_pypi={"mirror_no_project_list": False, "mirror_cache_expiry": 3600})
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_failing_check_is_named_in_one_run() -> None:
    result = check(devpi_server_version="6.x", devpi_listen_port=70000, devpi_keep_venvs=1)
    assert result.returncode != 0
    output = " ".join(result.stdout.split())
    assert "devpi_server_version must be an exact version such as 6.20.3, got '6.x'" in output
    assert "devpi_listen_port must be between 1 and 65535, got 70000" in output
    assert "devpi_keep_venvs must be at least 2" in output


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        ({"devpi_web_version": "latest"}, "devpi_web_version must be an exact version"),
        ({"devpi_health_timeout": 0}, "devpi_health_timeout must be at least 1 second"),
        ({"devpi_open_files_limit": 64}, "devpi_open_files_limit must be at least 256"),
        ({"devpi_server_dir": "srv/devpi"}, "These must be absolute paths: devpi_server_dir"),
        ({"devpi_launchd_label": "-devpi"}, "devpi_launchd_label must be a reverse-DNS name"),
        ({"devpi_outside_url": "devpi.example.org"}, "devpi_outside_url must be empty or start"),
        (
            {"devpi_server_options": {"port": 4000}},
            "devpi_server_options must not set port: use devpi_listen_port instead",
        ),
        # The argument specs name the missing option (meta/argument_specs.yml).
        ({"devpi_users": [{"email": "x@example.org"}]}, "missing required arguments: name"),
        (
            {
                "devpi_indexes": [{"name": "eblume/dev", "bases": ["root/pypi"], "tpye": "stage"}],
                "devpi_root_password": "pw",
            },
            "tpye. Supported parameters include",
        ),
        (
            {"devpi_indexes": [{"name": "eblume/dev"}]},
            "devpi_root_password is needed to declare devpi_users and devpi_indexes",
        ),
        ({"devpi_environment": {"BAD-NAME": "1"}}, "devpi_environment names must be shell-style"),
        (
            {"devpi_restrict_modify": "root,,alice"},
            "devpi_restrict_modify must be empty or a comma-separated list",
        ),
        ({"devpi_restrict_modify": "alice"}, "devpi_restrict_modify must name root"),
        (
            {"devpi_server_options": {"restrict-modify": "root,alice", "role": "primary"}},
            "devpi_server_options must not set restrict-modify, role: use devpi_restrict_modify, "
            "devpi_role instead",
        ),
        (
            {"devpi_indexes": [{"name": "root/pypi"}], "devpi_root_password": "pw"},
            "root/pypi is managed through devpi_root_pypi",
        ),
        (
            {"devpi_root_pypi": {"mirror_no_projects_list": True}},
            "mirror_no_projects_list. Supported parameters include",
        ),
        (
            {"devpi_root_pypi": {"mirror_cache_expiry": "an hour"}},
            "mirror_cache_expiry",
        ),
        # Replication
        (
            {"devpi_role": "mirror"},
            "devpi_role must be one of: standalone, primary, replica, got: mirror",
        ),
        (
            {"devpi_role": "replica", "devpi_shared_secret": "s" * 44},
            "devpi_primary_url must be set when devpi_role is replica",
        ),
        (
            {"devpi_primary_url": "devpi-primary:3141"},
            "devpi_primary_url must start with http:// or https:// and name a host, got 'devpi-primary:3141'",
        ),
        (
            {"devpi_role": "replica", "devpi_primary_url": "http://devpi-primary:3141"},
            "A replica needs its primary's secret: set devpi_primary_host",
        ),
        (
            {"devpi_primary_host": "not-in-the-inventory"},
            "devpi_primary_host must be a host of this inventory, got 'not-in-the-inventory'",
        ),
        (
            {"devpi_shared_secret": "too-short"},
            "devpi_shared_secret must be one line of at least 32 characters",
        ),
        ({"devpi_replica_sync_timeout": 0}, "devpi_replica_sync_timeout must be at least 1 second"),
    ],
)
def test_a_bad_value_is_refused_by_name(role_vars: dict[str, Any], message: str) -> None:
    result = check(**role_vars)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout


def test_a_replica_with_its_primary_and_a_secret_passes() -> None:
    result = check(
        devpi_role="replica",
        devpi_primary_url="https://devpi-primary.example.org",
        devpi_primary_host="localhost",
        # Declared for every host: a replica skips them, so no root password is needed.
        devpi_users=[{"name": "eblume", "password": "pw"}],
    )
    assert result.returncode == 0, result.stdout + result.stderr
