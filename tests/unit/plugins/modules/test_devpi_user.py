# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi.devpi_user against a real devpi-server, run through the ansible command."""

from __future__ import annotations

from typing import Any

from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    RunModule,
)


def login(devpi: DevpiServer, **args: Any) -> dict[str, Any]:
    return {"url": devpi.url, "login_password": devpi.root_password, **args}


def test_create_is_changed_then_ok_and_keeps_the_password_out_of_the_output(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    args = login(devpi, name="alice", password="alice-first-pw", email="alice@example.org")
    first = run_module("devpi_user", args, diff=True)
    assert first.changed, first.result
    assert first.result["user"] == {
        "username": "alice",
        "email": "alice@example.org",
        "indexes": [],
    }
    assert first.result["diff"]["before"] == {"state": "absent"}
    assert first.result["diff"]["after"]["state"] == "present"
    user = devpi.user("alice")
    assert user is not None and user["email"] == "alice@example.org"
    assert (
        devpi.request("POST", "/+login", {"user": "alice", "password": "alice-first-pw"})[0] == 200
    )

    again = run_module("devpi_user", args)
    assert not again.changed and not again.failed, again.result
    for run in (first, again):
        assert "alice-first-pw" not in run.stdout + run.stderr
        assert devpi.root_password not in run.stdout + run.stderr
        assert not run.warnings, run.warnings


def test_password_is_changed_only_when_it_no_longer_logs_in(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    devpi.root("PUT", "/bob", {"password": "bob-old-pw"})
    changed = run_module("devpi_user", login(devpi, name="bob", password="bob-new-pw"), diff=True)
    assert changed.changed, changed.result
    assert (
        changed.result["diff"]["before"]["password"] != changed.result["diff"]["after"]["password"]
    )
    assert devpi.request("POST", "/+login", {"user": "bob", "password": "bob-new-pw"})[0] == 200
    assert devpi.request("POST", "/+login", {"user": "bob", "password": "bob-old-pw"})[0] == 401

    again = run_module("devpi_user", login(devpi, name="bob", password="bob-new-pw"))
    assert not again.changed, again.result


def test_email_change_shows_in_the_diff_and_check_mode_leaves_it(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    devpi.root("PUT", "/carol", {"password": "carol-pw", "email": "old@example.org"})
    args = login(devpi, name="carol", email="new@example.org")

    checked = run_module("devpi_user", args, check=True, diff=True)
    assert checked.changed, checked.result
    assert checked.result["diff"] == {
        "before": {"state": "present", "email": "old@example.org"},
        "after": {"state": "present", "email": "new@example.org"},
    }
    assert devpi.user("carol")["email"] == "old@example.org"  # type: ignore[index]

    changed = run_module("devpi_user", args)
    assert changed.changed, changed.result
    assert devpi.user("carol")["email"] == "new@example.org"  # type: ignore[index]
    assert not run_module("devpi_user", args).changed


def test_check_mode_create_reports_changed_but_creates_nothing(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    run = run_module("devpi_user", login(devpi, name="dave", password="dave-pw"), check=True)
    assert run.changed, run.result
    assert devpi.user("dave") is None


def test_delete_is_changed_then_ok(devpi: DevpiServer, run_module: RunModule) -> None:
    devpi.root("PUT", "/erin", {"password": "erin-pw"})
    devpi.root("PUT", "/erin/dev", {"type": "stage"})
    args = login(devpi, name="erin", state="absent")

    checked = run_module("devpi_user", args, check=True)
    assert checked.changed and devpi.user("erin") is not None

    deleted = run_module("devpi_user", args)
    assert deleted.changed, deleted.result
    assert deleted.result["deleted_indexes"] == ["erin/dev"]
    assert devpi.user("erin") is None
    assert not run_module("devpi_user", args).changed


def test_delete_refuses_a_user_with_uploads_unless_forced(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    devpi.root("PUT", "/frank", {"password": "frank-pw"})
    devpi.root("PUT", "/frank/dev", {"type": "stage"})
    devpi.upload_wheel("frank/dev", ("frank", "frank-pw"))
    args = login(devpi, name="frank", state="absent")

    refused = run_module("devpi_user", args)
    assert refused.failed
    assert "refusing to delete the devpi user 'frank'" in refused.msg
    assert "frank/dev has uploaded packages (tinypkg)" in refused.msg
    assert "force: true" in refused.msg
    assert devpi.user("frank") is not None

    forced = run_module("devpi_user", {**args, "force": True})
    assert forced.changed, forced.result
    assert devpi.user("frank") is None


def test_create_without_password_and_invalid_names_fail_clearly(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    no_password = run_module("devpi_user", login(devpi, name="gina"))
    assert no_password.failed
    assert no_password.msg == "password is required to create the devpi user 'gina'"

    invalid = run_module("devpi_user", login(devpi, name="gi na", password="x-pw"))
    assert invalid.failed
    assert invalid.msg.startswith("invalid user name 'gi na'")
    assert devpi.user("gina") is None
