# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_plan filter: every decision of a converge, made once from the probe."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.plugins.filter.devpi_plan import FilterModule, devpi_plan

BASE = "/var/lib/devpi"
TARGET = f"{BASE}/venvs/devpi-server-6.20.3-web-5.1.1"
OLD = f"{BASE}/venvs/devpi-server-6.19.3-web-5.1.0"
CONFIG = f"{BASE}/devpi-server.yml"
SECRET = f"{BASE}/secret"
UNIT = "/etc/systemd/system/devpi.service"
MARKER = ".mcquack-devpi-complete"
SERVERVERSION = f"{BASE}/server-dir/.serverversion"

RENDERED = {CONFIG: "devpi-server:\n  port: 3141\n", UNIT: "[Service]\nExecStart=devpi-server\n"}
SHA1 = {path: hashlib.sha1(text.encode()).hexdigest() for path, text in RENDERED.items()}
LAYOUT: dict[str, Any] = {
    "paths": {
        BASE: {"type": "directory", "mode": "0750", "owner": "devpi"},
        f"{BASE}/venv": {"type": "link", "link_target": TARGET},
        f"{TARGET}/{MARKER}": {"type": "file"},
        SECRET: {"type": "file", "mode": "0600", "owner": "devpi", "restart": "runtime"},
    },
    "files": [
        {"path": CONFIG, "owner": "devpi", "mode": "0640", "restart": "runtime"},
        {"path": UNIT, "owner": "root", "mode": "0644", "restart": "definition"},
    ],
    "venv_dir": f"{BASE}/venv",
    "target_venv": TARGET,
    "marker": MARKER,
    "server_version": SERVERVERSION,
    "adopted_venv": f"{BASE}/venvs/adopted-1700000000",
    "root_pypi": "root/pypi",
}

IN_PLACE: dict[str, Any] = {
    "paths": {
        BASE: {"exists": True, "type": "directory", "mode": "0750", "owner": "devpi"},
        f"{BASE}/venv": {
            "exists": True,
            "type": "link",
            "mode": "0777",
            "owner": "devpi",
            "link_target": TARGET,
        },
        f"{TARGET}/{MARKER}": {
            "exists": True,
            "type": "file",
            "mode": "0644",
            "owner": "devpi",
            "sha1": "x",
        },
        CONFIG: {
            "exists": True,
            "type": "file",
            "mode": "0640",
            "owner": "devpi",
            "sha1": SHA1[CONFIG],
        },
        SECRET: {"exists": True, "type": "file", "mode": "0600", "owner": "devpi", "sha1": "s"},
        UNIT: {
            "exists": True,
            "type": "file",
            "mode": "0644",
            "owner": "root",
            "sha1": SHA1[UNIT],
        },
        SERVERVERSION: {"exists": True, "type": "file", "mode": "0644", "owner": "devpi"},
    },
    "service": {"active": True, "enabled": True},
    "server": {
        "answers": True,
        "seconds": 0.01,
        "login": True,
        "indexes": {"root/pypi": {"exists": True, "changes": {}}},
    },
}


def probed(**changes: Any) -> dict[str, Any]:
    """IN_PLACE with paths replaced (None: missing) and service/server keys merged in."""
    state = copy.deepcopy(IN_PLACE)
    for path, attributes in changes.pop("paths", {}).items():
        state["paths"][path] = {"exists": False} if attributes is None else attributes
    for key, value in changes.items():
        state[key] = {**state[key], **value}
    return state


def plan(state: dict[str, Any], password: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = devpi_plan(state, LAYOUT, RENDERED, root_password_given=password)
    return result


def test_a_host_in_place_has_nothing_to_do() -> None:
    assert plan(IN_PLACE) == {
        "drift": [],
        "converge": False,
        "initialise": False,
        "build_venv": False,
        "switch": False,
        "adopt": False,
        "previous_venv": "",
        "restart": "none",
        "check_health": False,
        "check_password": False,
        "declare_root_pypi": False,
        "restore": False,
        "restore_missing": False,
        "restore_refused": False,
        "promote": False,
        "role_conflict": False,
        "node_role": "",
        "check_sync": False,
    }


def test_a_fresh_host_gets_everything_and_a_start() -> None:
    fresh = {"paths": {}, "service": {"active": False, "enabled": False},
             "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip
    result = plan(fresh)
    assert result["converge"] and result["initialise"] and result["build_venv"]
    assert result["switch"] and not result["adopt"] and result["previous_venv"] == ""
    assert result["restart"] == "start"
    assert result["check_health"] and result["declare_root_pypi"]
    # devpi-init sets the root password: nothing to check or rotate.
    assert not result["check_password"]
    assert "the service is not running" in result["drift"]
    assert f"{CONFIG}: missing" in result["drift"]


def test_a_rendered_file_is_compared_by_the_sha1_of_its_text() -> None:
    text = "devpi-server:\n  title: Café\n"
    result = devpi_plan(
        probed(paths={CONFIG: {**IN_PLACE["paths"][CONFIG],
                               "sha1": hashlib.sha1(text.encode()).hexdigest()}}),
        LAYOUT, {**RENDERED, CONFIG: text},
    )  # fmt: skip
    assert result["restart"] == "none" and not result["converge"]


@pytest.mark.parametrize(
    ("changed", "restart"),
    [
        ({UNIT: "other"}, "definition"),
        ({CONFIG: "other"}, "runtime"),
        # both: the new definition's start already runs the new config
        ({UNIT: "other", CONFIG: "other"}, "definition"),
    ],
)
def test_a_changed_file_needs_the_restart_it_is_declared_with(
    changed: dict[str, str], restart: str
) -> None:
    paths = {path: {**IN_PLACE["paths"][path], "sha1": sha1} for path, sha1 in changed.items()}
    result = plan(probed(paths=paths))
    assert result["converge"] and result["check_health"]
    assert result["restart"] == restart
    assert not result["switch"] and not result["build_venv"]


def test_a_missing_secret_needs_a_runtime_restart() -> None:
    assert plan(probed(paths={SECRET: None}))["restart"] == "runtime"


def test_a_mode_drift_of_the_base_dir_needs_no_restart() -> None:
    result = plan(probed(paths={BASE: {**IN_PLACE["paths"][BASE], "mode": "0755"}}))
    assert result["converge"] and result["restart"] == "none"
    assert result["drift"] == [f"{BASE}: mode is 0755, expected 0750"]


def test_new_pins_switch_from_the_running_venv_and_remember_it() -> None:
    venv = {**IN_PLACE["paths"][f"{BASE}/venv"], "link_target": OLD}
    result = plan(probed(paths={f"{BASE}/venv": venv, f"{TARGET}/{MARKER}": None}))
    assert result["build_venv"] and result["switch"]
    assert result["previous_venv"] == OLD
    assert result["restart"] == "runtime"


def test_a_kept_venv_is_switched_to_without_a_build() -> None:
    venv = {**IN_PLACE["paths"][f"{BASE}/venv"], "link_target": OLD}
    result = plan(probed(paths={f"{BASE}/venv": venv}))
    assert result["switch"] and not result["build_venv"]


def test_the_active_venv_without_its_marker_is_completed_and_restarted() -> None:
    # The link already points at the pins but the marker is gone: the one guard (the marker)
    # builds the venv again, and what devpi runs changed, so it restarts.
    result = plan(probed(paths={f"{TARGET}/{MARKER}": None}))
    assert result["build_venv"] and not result["switch"]
    assert result["restart"] == "runtime"
    assert result["previous_venv"] == ""


def test_a_plain_directory_venv_is_adopted_as_the_one_to_roll_back_to() -> None:
    plain = {"exists": True, "type": "directory", "mode": "0755", "owner": "devpi"}
    result = plan(probed(paths={f"{BASE}/venv": plain}))
    assert result["adopt"] and result["switch"]
    assert result["previous_venv"] == LAYOUT["adopted_venv"]


def test_a_stopped_service_is_started_even_when_its_unit_changed() -> None:
    unit = {**IN_PLACE["paths"][UNIT], "sha1": "other"}
    result = plan(probed(paths={UNIT: unit}, service={"active": False}))
    assert result["restart"] == "start"


def test_a_rotated_root_password_is_checked_on_an_otherwise_quiet_run() -> None:
    result = plan(probed(server={"login": False}))
    assert not result["converge"] and not result["check_health"]
    assert result["check_password"]
    assert not plan(probed(server={"login": False}), password=False)["check_password"]


def test_root_pypi_is_declared_when_it_differs_or_devpi_did_not_answer() -> None:
    differs = {"root/pypi": {"exists": True, "changes": {"mirror_no_project_list": True}}}
    result = plan(probed(server={"indexes": differs}))
    assert result["declare_root_pypi"] and not result["converge"]
    silent = plan(probed(server={"answers": False, "indexes": {}}))
    assert silent["check_health"] and silent["declare_root_pypi"] and silent["restart"] == "none"


BACKUP_TIMER = "/etc/systemd/system/devpi-backup.timer"
EXPORT = "/srv/restore/devpi-export-20261201T031700Z"
RESTORE = {
    "from": EXPORT,
    "source": f"{EXPORT}/dataindex.json",
    "marker": f"{BASE}/server-dir/.mcquack-restored-from",
    "marker_text": EXPORT,
}


def test_a_file_that_must_be_absent_is_drift_until_it_is_gone() -> None:
    layout = {**LAYOUT, "absent": [BACKUP_TIMER]}
    timer = {"exists": True, "type": "file", "mode": "0644", "owner": "root", "sha1": "t"}
    result = devpi_plan(probed(paths={BACKUP_TIMER: timer}), layout, RENDERED)
    assert result["converge"] and result["drift"] == [f"{BACKUP_TIMER}: present, expected absent"]
    # Removing it restarts nothing, and once it is gone the run is a no-op again.
    assert result["restart"] == "none"
    assert not devpi_plan(probed(paths={BACKUP_TIMER: None}), layout, RENDERED)["converge"]


def test_a_file_declared_with_restart_none_restarts_nothing() -> None:
    layout = {**LAYOUT, "files": [*LAYOUT["files"],
                                  {"path": BACKUP_TIMER, "owner": "root", "mode": "0644", "restart": "none"}]}  # fmt: skip
    result = devpi_plan(
        probed(paths={BACKUP_TIMER: None}), layout, {**RENDERED, BACKUP_TIMER: "[Timer]\n"}
    )
    assert result["converge"] and result["restart"] == "none"


def fresh(*present: str) -> dict[str, Any]:
    paths = {
        path: {"exists": True, "type": "file", "mode": "0644", "owner": "root", "sha1": "x"}
        for path in present
    }
    return {"paths": paths, "service": {"active": False, "enabled": False},
            "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip


def test_a_restore_replaces_the_init_and_rotates_the_root_password() -> None:
    result = devpi_plan(fresh(RESTORE["source"]), {**LAYOUT, "restore": RESTORE}, RENDERED, True)
    assert result["initialise"] and result["restore"]
    assert not result["restore_missing"] and not result["restore_refused"]
    # The root password is the exported one: check it, and set devpi_root_password if it differs.
    assert result["check_password"]


def test_a_restore_from_an_export_that_is_not_there_is_refused() -> None:
    result = devpi_plan(fresh(), {**LAYOUT, "restore": RESTORE}, RENDERED, True)
    assert result["restore"] and result["restore_missing"]


def test_a_restore_onto_a_server_dir_with_data_is_refused() -> None:
    result = devpi_plan(probed(), {**LAYOUT, "restore": RESTORE}, RENDERED, True)
    assert result["restore_refused"] and not result["restore"]


def test_the_restored_server_dir_is_recognised_by_its_marker() -> None:
    marker = {"exists": True, "type": "file", "mode": "0600", "owner": "devpi",
              "sha1": hashlib.sha1(EXPORT.encode()).hexdigest()}  # fmt: skip
    layout = {**LAYOUT, "restore": RESTORE}
    result = devpi_plan(probed(paths={RESTORE["marker"]: marker}), layout, RENDERED, True)
    assert not result["restore_refused"] and not result["restore"] and not result["converge"]
    # A marker of another export is someone else's data.
    other = {**marker, "sha1": hashlib.sha1(b"/srv/other").hexdigest()}
    assert devpi_plan(probed(paths={RESTORE["marker"]: other}), layout, RENDERED, True)[
        "restore_refused"
    ]


def test_a_restore_is_planned_even_when_all_else_is_in_place() -> None:
    result = devpi_plan(
        probed(paths={SERVERVERSION: None, RESTORE["source"]: {"exists": True, "type": "file"}}),
        {**LAYOUT, "restore": RESTORE}, RENDERED, True,
    )  # fmt: skip
    assert result["converge"] and result["restore"] and result["restart"] == "runtime"


def test_is_registered_as_a_filter() -> None:
    assert FilterModule().filters()["devpi_plan"] is devpi_plan


# --- Replication (devpi_role) ----------------------------------------------------------------


def replica_state(**changes: Any) -> dict[str, Any]:
    """A replica in place: its probe sends no password and compares no index."""
    state = probed(**changes)
    state["server"] = {"answers": True, "seconds": 0.01}
    state.setdefault("node", {"exists": True, "role": "replica"})
    return state


def test_a_replica_in_place_is_a_no_op_without_password_or_mirror_checks() -> None:
    result = devpi_plan(replica_state(), LAYOUT, RENDERED, root_password_given=True, role="replica")
    assert not result["converge"] and not result["check_health"]
    # Its users, root password and root/pypi are the primary's: replicated, not declared here.
    assert not result["check_password"] and not result["declare_root_pypi"]
    assert not result["check_sync"] and not result["promote"] and not result["role_conflict"]


def test_a_replica_that_restarts_waits_for_sync() -> None:
    state = replica_state(paths={CONFIG: {**IN_PLACE["paths"][CONFIG], "sha1": "other"}})
    result = devpi_plan(state, LAYOUT, RENDERED, role="replica")
    assert result["restart"] == "runtime" and result["check_sync"]
    assert not result["declare_root_pypi"]


def test_a_fresh_replica_is_initialised_and_waits_for_sync() -> None:
    fresh = {"paths": {}, "service": {"active": False, "enabled": False}, "node": {"exists": False},
             "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip
    result = devpi_plan(fresh, LAYOUT, RENDERED, role="replica")
    assert result["initialise"] and result["restart"] == "start" and result["check_sync"]
    assert not result["role_conflict"] and not result["check_password"]


def test_a_former_replica_declared_primary_is_promoted_with_a_fresh_start() -> None:
    result = devpi_plan(replica_state(), LAYOUT, RENDERED, root_password_given=True, role="primary")
    assert result["promote"] and result["converge"] and result["restart"] == "start"
    assert not result["initialise"] and not result["check_sync"]
    assert result["check_health"] and result["declare_root_pypi"]


@pytest.mark.parametrize(
    ("role", "node_role"),
    [("replica", "primary"), ("replica", "standalone"), ("standalone", "replica")],
)
def test_a_role_devpi_would_refuse_on_this_server_dir_is_a_conflict(
    role: str, node_role: str
) -> None:
    state = replica_state()
    state["node"] = {"exists": True, "role": node_role}
    result = devpi_plan(state, LAYOUT, RENDERED, role=role)
    assert result["role_conflict"] and not result["promote"]
    assert result["node_role"] == node_role


def test_a_standalone_server_dir_may_become_a_primary_with_a_restart() -> None:
    state = probed(paths={CONFIG: {**IN_PLACE["paths"][CONFIG], "sha1": "other"}})
    state["node"] = {"exists": True, "role": "standalone"}
    result = devpi_plan(state, LAYOUT, RENDERED, role="primary")
    assert not result["role_conflict"] and not result["promote"]
    assert result["restart"] == "runtime"


def test_a_given_secret_that_differs_is_named_without_its_hashes() -> None:
    layout = copy.deepcopy(LAYOUT)
    layout["paths"][SECRET] = {**layout["paths"][SECRET], "sha1": "wanted-sha1", "redact": True}
    result = devpi_plan(replica_state(), layout, RENDERED, role="replica")
    assert result["drift"] == [f"{SECRET}: content differs from the one declared"]
    assert result["restart"] == "runtime" and result["check_sync"]
    assert "wanted-sha1" not in str(result)
