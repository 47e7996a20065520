# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi_restrict_modify against a real devpi-server 6.20.3, run with the devpi-server.yml the
role renders: its default (root) refuses anonymous registration, and users who existed before it
was set keep uploading to their own indexes and changing their own password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    devpi_server_with_config,
    free_port,
)

ALICE = ("alice", "alice-first-Pw-1")
ALICE_NEW_PASSWORD = "alice-second-Pw-2"


def render_config(render_dir: Path, base_dir: Path, **role_vars: Any) -> Path:
    """The role's devpi-server.yml, rendered into render_dir, for a server whose server-dir and
    secret are in base_dir, on a free loopback port."""
    for directory in (render_dir, base_dir):
        directory.mkdir(parents=True, exist_ok=True)
    base_dir.chmod(0o700)  # devpi-server refuses a secret whose directory others may write
    result = run_playbook(
        "render_templates.yml",
        {
            "render_dir": str(render_dir),
            "devpi_service_manager": "systemd",
            "devpi_base_dir": str(base_dir),
            "devpi_listen_port": free_port(),
            **role_vars,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return render_dir / "devpi-server.yml"


def test_the_default_config_restricts_modify_to_root(tmp_path: Path) -> None:
    settings = yaml.safe_load(render_config(tmp_path, tmp_path).read_text())["devpi-server"]
    assert settings["restrict-modify"] == "root"


@pytest.fixture(scope="module")
def before_and_after(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server-dir, first served with devpi_restrict_modify "" (devpi's own default), where
    alice registers herself, makes her own index and uploads to it, as users of an older
    converge may have; then served again with the role's default config, as the converge that
    brings devpi_restrict_modify does. What each answered, by step."""
    base = tmp_path_factory.mktemp("restrict")
    seen: dict[str, Any] = {}
    server = base / "server"
    with devpi_server_with_config(
        render_config(base / "open", server, devpi_restrict_modify="")
    ) as devpi:
        seen["open: anonymous registers alice"] = devpi.request(
            "PUT", "/alice", {"password": ALICE[1], "email": "alice@example.org"}
        )[0]
        seen["open: alice makes alice/dev"] = devpi.request(
            "PUT", "/alice/dev", {"type": "stage", "volatile": True}, auth=ALICE
        )[0]
        devpi.upload_wheel("alice/dev", ALICE, version="1.0")
    # The same server-dir and secret, now with the role's default.
    config = render_config(base / "restricted", server)
    assert yaml.safe_load(config.read_text())["devpi-server"]["restrict-modify"] == "root"
    with devpi_server_with_config(config) as devpi:
        seen["devpi"] = devpi
        yield seen


def test_without_restrict_modify_anyone_registers(before_and_after: dict[str, Any]) -> None:
    """The contrast: devpi's own default, what devpi_restrict_modify "" gives."""
    assert before_and_after["open: anonymous registers alice"] == 201
    assert before_and_after["open: alice makes alice/dev"] == 200


def test_anonymous_registration_is_refused(before_and_after: dict[str, Any]) -> None:
    devpi: DevpiServer = before_and_after["devpi"]
    status, payload = devpi.request("PUT", "/mallory", {"password": "mallory-Pw-3"})
    assert status == 403, payload
    assert devpi.user("mallory") is None


def test_a_user_cannot_register_others_or_make_indexes(before_and_after: dict[str, Any]) -> None:
    devpi: DevpiServer = before_and_after["devpi"]
    assert devpi.request("PUT", "/trudy", {"password": "trudy-Pw-4"}, auth=ALICE)[0] == 403
    assert devpi.request("PUT", "/alice/other", {"type": "stage"}, auth=ALICE)[0] == 403
    assert devpi.index("alice/other") is None


def test_an_existing_user_uploads_to_their_own_index(before_and_after: dict[str, Any]) -> None:
    devpi: DevpiServer = before_and_after["devpi"]
    devpi.upload_wheel("alice/dev", ALICE, version="1.1")  # asserts 200
    status, payload = devpi.request("GET", "/alice/dev/tinypkg")
    assert status == 200, payload
    assert {"1.0", "1.1"} <= set(payload["result"])
    # ... and deletes a release there (acl_upload still names her).
    assert devpi.request("DELETE", "/alice/dev/tinypkg/1.0", auth=ALICE)[0] == 200


def test_an_existing_user_changes_their_own_password_only(
    before_and_after: dict[str, Any],
) -> None:
    devpi: DevpiServer = before_and_after["devpi"]
    # Not the rest of their account, nor their index's options: root does that.
    assert devpi.request("PATCH", "/alice", {"email": "new@example.org"}, auth=ALICE)[0] == 403
    assert devpi.request("PATCH", "/alice/dev", {"volatile": False}, auth=ALICE)[0] == 403
    assert devpi.request("DELETE", "/alice", auth=ALICE)[0] == 403
    status, payload = devpi.request("PATCH", "/alice", {"password": ALICE_NEW_PASSWORD}, auth=ALICE)
    assert status == 200, payload
    alice_now = ("alice", ALICE_NEW_PASSWORD)
    assert devpi.request("POST", "/+login", {"user": "alice", "password": ALICE[1]})[0] == 401
    devpi.upload_wheel("alice/dev", alice_now, version="1.2")


def test_root_still_declares_users_and_indexes(before_and_after: dict[str, Any]) -> None:
    devpi: DevpiServer = before_and_after["devpi"]
    devpi.root("PUT", "/bob", {"password": "bob-Pw-5"})
    devpi.root("PUT", "/bob/dev", {"type": "stage", "bases": ["alice/dev"]})
    devpi.root("PATCH", "/alice", {"email": "alice@example.org"})
    assert devpi.index("bob/dev") is not None
    devpi.upload_wheel("bob/dev", ("bob", "bob-Pw-5"), project="bobpkg")
