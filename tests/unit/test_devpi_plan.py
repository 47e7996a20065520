# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_plan filters: every decision of a converge, made once from the probe."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.plugins.filter.devpi_plan import (
    FilterModule,
    devpi_plan,
    devpi_probe_paths,
    devpi_read_primary_secret,
    devpi_recovery,
)

BASE = "/var/lib/devpi"
TARGET = f"{BASE}/venvs/devpi-server-6.20.3-web-5.1.1"
OLD = f"{BASE}/venvs/devpi-server-6.19.3-web-5.1.0"
CONFIG = f"{BASE}/devpi-server.yml"
SECRET = f"{BASE}/secret"
UNIT = "/etc/systemd/system/devpi.service"
MARKER = ".mcquack-devpi-complete"
SERVER_DIR = f"{BASE}/server-dir"
SERVERVERSION = f"{SERVER_DIR}/.serverversion"
SCRIPT = f"{BASE}/devpi-backup"
BACKUP_SERVICE = "/etc/systemd/system/devpi-backup.service"
BACKUP_TIMER = "/etc/systemd/system/devpi-backup.timer"

RENDERED = {
    CONFIG: "devpi-server:\n  port: 3141\n",
    UNIT: "[Service]\nExecStart=devpi-server\n",
    SCRIPT: "#!/bin/sh\n",
    BACKUP_SERVICE: "[Service]\nType=oneshot\n",
    BACKUP_TIMER: "[Timer]\nOnCalendar=*-*-* 03:17:00\n",
}
SHA1 = {path: hashlib.sha1(text.encode()).hexdigest() for path, text in RENDERED.items()}
LAYOUT: dict[str, Any] = {
    "manager": "systemd",
    "paths": {
        BASE: {"type": "directory", "mode": "0750", "owner": "devpi"},
        f"{BASE}/venv": {"type": "link", "link_target": TARGET},
        f"{TARGET}/{MARKER}": {"type": "file"},
        SECRET: {"type": "file", "mode": "0600", "owner": "devpi", "restart": "runtime"},
    },
    "files": [
        {"path": CONFIG, "owner": "devpi", "mode": "0640", "job": "devpi", "restart": "runtime"},
        {"path": UNIT, "owner": "root", "mode": "0644", "job": "devpi", "restart": "definition"},
        {"path": SCRIPT, "owner": "root", "mode": "0755", "job": "backup", "restart": "none"},
        {
            "path": BACKUP_SERVICE,
            "owner": "root",
            "mode": "0644",
            "job": "backup",
            "restart": "definition",
        },
        {
            "path": BACKUP_TIMER,
            "owner": "root",
            "mode": "0644",
            "job": "backup",
            "restart": "definition",
        },
    ],
    "jobs": {"devpi": True, "backup": False},
    "secret": SECRET,
    "venv_dir": f"{BASE}/venv",
    "target_venv": TARGET,
    "marker": MARKER,
    "server_dir": SERVER_DIR,
    "node_info": f"{SERVER_DIR}/.nodeinfo",
    "last_good_dir": f"{BASE}/last-good",
    "adopted_venv": f"{BASE}/venvs/adopted-1700000000",
    "root_pypi": "root/pypi",
    "host": "devpi-default",
    "primary_host": "devpi-primary",
    "primary_secret_file": SECRET,
    "restore": {"from": "", "marker": f"{SERVER_DIR}/.mcquack-restored-from"},
}
RUNNING = {"loaded": True, "active": True, "enabled": True, "pid": 4242}
STOPPED = {"loaded": True, "active": False, "enabled": False, "pid": None}
GONE = {"loaded": False, "active": False, "enabled": False, "pid": None}


def a_file(owner: str, mode: str, sha1: str) -> dict[str, Any]:
    return {"exists": True, "type": "file", "mode": mode, "owner": owner, "sha1": sha1}


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
        f"{TARGET}/{MARKER}": a_file("devpi", "0644", "x"),
        CONFIG: a_file("devpi", "0640", SHA1[CONFIG]),
        SECRET: a_file("devpi", "0600", "s"),
        UNIT: a_file("root", "0644", SHA1[UNIT]),
        SERVERVERSION: a_file("devpi", "0644", "v"),
        SCRIPT: {"exists": False},
        BACKUP_SERVICE: {"exists": False},
        BACKUP_TIMER: {"exists": False},
    },
    "jobs": {"devpi": RUNNING, "backup": GONE},
    "server": {
        "answers": True,
        "seconds": 0.01,
        "login": True,
        "indexes": {"root/pypi": {"exists": True, "changes": {}}},
    },
}


def probed(**changes: Any) -> dict[str, Any]:
    """IN_PLACE with paths replaced (None: missing) and jobs/server keys merged in."""
    state = copy.deepcopy(IN_PLACE)
    for path, attributes in changes.pop("paths", {}).items():
        state["paths"][path] = {"exists": False} if attributes is None else attributes
    for key, value in changes.items():
        state[key] = {**state.get(key, {}), **value}
    return state


def plan(state: dict[str, Any], password: bool = True, **options: Any) -> dict[str, Any]:
    layout = options.pop("layout", LAYOUT)
    result: dict[str, Any] = devpi_plan(
        state, layout, RENDERED, root_password_given=password, **options
    )
    return result


def action(result: dict[str, Any], job: str = "devpi") -> str:
    return str(result["jobs"][job]["action"])


def with_backups() -> dict[str, Any]:
    return {**LAYOUT, "jobs": {"devpi": True, "backup": True}}


BACKUP_IN_PLACE = {
    SCRIPT: a_file("root", "0755", SHA1[SCRIPT]),
    BACKUP_SERVICE: a_file("root", "0644", SHA1[BACKUP_SERVICE]),
    BACKUP_TIMER: a_file("root", "0644", SHA1[BACKUP_TIMER]),
}


def test_a_host_in_place_has_nothing_to_do() -> None:
    assert plan(IN_PLACE) == {
        "drift": [],
        "errors": [],
        "converge": False,
        "initialise": False,
        "secret_given": False,
        "build_venv": False,
        "switch": False,
        "adopt": False,
        "previous_venv": "",
        "write": [],
        "jobs": {
            "devpi": {"action": "none", "files": [CONFIG, UNIT]},
            "backup": {"action": "none", "files": []},
        },
        "last_good": [],
        "backup_first": False,
        "check_health": False,
        "check_password": False,
        "declare_root_pypi": False,
        "declare_content": False,
        "content_on_primary": False,
        "restore": False,
        "promote": False,
        "node_role": "",
        "check_sync": False,
    }


def test_a_fresh_host_gets_everything_and_a_start() -> None:
    fresh = {"paths": {}, "jobs": {"devpi": GONE, "backup": GONE},
             "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip
    result = plan(fresh)
    assert result["converge"] and result["initialise"] and result["build_venv"]
    assert result["switch"] and not result["adopt"] and result["previous_venv"] == ""
    assert action(result) == "start" and action(result, "backup") == "none"
    assert result["check_health"] and result["declare_root_pypi"]
    # devpi-init sets the root password: nothing to check or rotate.
    assert not result["check_password"] and not result["backup_first"]
    assert "the job devpi is not running" in result["drift"]
    assert f"{CONFIG}: missing" in result["drift"]
    # Both of devpi's files are written, with the rendered text; none of the backup job's.
    assert [(f["path"], f["content"]) for f in result["write"]] == [
        (CONFIG, RENDERED[CONFIG]),
        (UNIT, RENDERED[UNIT]),
    ]


def test_a_first_initialisation_needs_the_root_password_and_says_so() -> None:
    fresh = {"paths": {}, "jobs": {}, "server": {"answers": False}}
    (error,) = plan(fresh, password=False)["errors"]
    assert error.startswith("devpi_root_password must be set while") and SERVER_DIR in error


def test_a_rendered_file_is_compared_by_the_sha1_of_its_text() -> None:
    text = "devpi-server:\n  title: Café\n"
    result = devpi_plan(
        probed(paths={CONFIG: a_file("devpi", "0640", hashlib.sha1(text.encode()).hexdigest())}),
        LAYOUT, {**RENDERED, CONFIG: text},
    )  # fmt: skip
    assert action(result) == "none" and not result["converge"] and result["write"] == []


@pytest.mark.parametrize(
    ("changed", "wanted"),
    [
        ({UNIT: "other"}, "reload"),
        ({CONFIG: "other"}, "restart"),
        # both: the new definition's start already runs the new config
        ({UNIT: "other", CONFIG: "other"}, "reload"),
    ],
)
def test_a_changed_file_needs_the_action_it_is_declared_with(
    changed: dict[str, str], wanted: str
) -> None:
    paths = {path: {**IN_PLACE["paths"][path], "sha1": sha1} for path, sha1 in changed.items()}
    result = plan(probed(paths=paths))
    assert result["converge"] and result["check_health"]
    assert action(result) == wanted
    assert sorted(f["path"] for f in result["write"]) == sorted(changed)
    assert not result["switch"] and not result["build_venv"]


def test_a_missing_secret_needs_a_restart() -> None:
    assert action(plan(probed(paths={SECRET: None}))) == "restart"


def test_a_mode_drift_of_the_base_dir_needs_no_restart() -> None:
    result = plan(probed(paths={BASE: {**IN_PLACE["paths"][BASE], "mode": "0755"}}))
    assert result["converge"] and action(result) == "none"
    assert result["drift"] == [f"{BASE}: mode is 0755, expected 0750"]


def test_new_pins_switch_from_the_running_venv_and_remember_it() -> None:
    venv = {**IN_PLACE["paths"][f"{BASE}/venv"], "link_target": OLD}
    result = plan(probed(paths={f"{BASE}/venv": venv, f"{TARGET}/{MARKER}": None}))
    assert result["build_venv"] and result["switch"]
    assert result["previous_venv"] == OLD
    assert action(result) == "restart"


def test_a_kept_venv_is_switched_to_without_a_build() -> None:
    venv = {**IN_PLACE["paths"][f"{BASE}/venv"], "link_target": OLD}
    result = plan(probed(paths={f"{BASE}/venv": venv}))
    assert result["switch"] and not result["build_venv"]


def test_the_active_venv_without_its_marker_is_completed_and_restarted() -> None:
    # The link already points at the pins but the marker is gone: the one guard (the marker)
    # builds the venv again, and what devpi runs changed, so it restarts.
    result = plan(probed(paths={f"{TARGET}/{MARKER}": None}))
    assert result["build_venv"] and not result["switch"]
    assert action(result) == "restart"
    assert result["previous_venv"] == ""


def test_a_plain_directory_venv_is_adopted_as_the_one_to_roll_back_to() -> None:
    plain = {"exists": True, "type": "directory", "mode": "0755", "owner": "devpi"}
    result = plan(probed(paths={f"{BASE}/venv": plain}))
    assert result["adopt"] and result["switch"]
    assert result["previous_venv"] == LAYOUT["adopted_venv"]


def test_a_stopped_service_is_started_even_when_its_unit_changed() -> None:
    unit = {**IN_PLACE["paths"][UNIT], "sha1": "other"}
    result = plan(probed(paths={UNIT: unit}, jobs={"devpi": STOPPED}))
    assert action(result) == "start"


def test_systemd_needs_the_unit_active_and_enabled_launchd_only_loaded() -> None:
    disabled = {**RUNNING, "enabled": False}
    assert action(plan(probed(jobs={"devpi": disabled}))) == "start"
    launchd = {**LAYOUT, "manager": "launchd"}
    crashed = {"loaded": True, "active": False, "enabled": True, "pid": None}
    assert action(plan(probed(jobs={"devpi": crashed}), layout=launchd)) == "none"
    assert action(plan(probed(jobs={"devpi": GONE}), layout=launchd)) == "start"


def test_the_state_of_devpi_alone_is_read_from_a_probe_of_one_service() -> None:
    state = probed()
    del state["jobs"]
    state["service"] = {"active": True, "enabled": True}
    assert action(plan(state)) == "none"


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
    assert silent["check_health"] and silent["declare_root_pypi"] and action(silent) == "none"


def test_users_and_indexes_are_declared_here_unless_this_is_a_replica() -> None:
    result = plan(IN_PLACE, content_declared=True)
    assert result["declare_content"] and not result["content_on_primary"]
    replica = plan(replica_state(), role="replica", content_declared=True)
    assert not replica["declare_content"] and replica["content_on_primary"]


# --- The scheduled backup job ------------------------------------------------------------------


def test_a_backup_job_switched_on_is_written_and_started_without_touching_devpi() -> None:
    result = plan(IN_PLACE, layout=with_backups())
    assert result["converge"] and action(result, "backup") == "start"
    assert action(result) == "none" and result["check_health"]
    assert {f["path"] for f in result["write"]} == {SCRIPT, BACKUP_SERVICE, BACKUP_TIMER}
    assert "the job backup is not running" in result["drift"]


def test_a_backup_job_in_place_is_a_no_op() -> None:
    state = probed(paths=BACKUP_IN_PLACE, jobs={"backup": RUNNING})
    result = plan(state, layout=with_backups())
    assert not result["converge"] and action(result, "backup") == "none"


@pytest.mark.parametrize(
    ("path", "wanted"), [(BACKUP_TIMER, "reload"), (BACKUP_SERVICE, "reload"), (SCRIPT, "none")]
)
def test_a_changed_schedule_reloads_the_job_and_a_changed_script_needs_nothing(
    path: str, wanted: str
) -> None:
    changed = {**BACKUP_IN_PLACE, path: {**BACKUP_IN_PLACE[path], "sha1": "other"}}
    result = plan(probed(paths=changed, jobs={"backup": RUNNING}), layout=with_backups())
    assert result["converge"] and action(result, "backup") == wanted
    assert [f["path"] for f in result["write"]] == [path]
    assert action(result) == "none"


def test_a_backup_job_switched_off_is_removed_with_the_files_it_left() -> None:
    left = {SCRIPT: BACKUP_IN_PLACE[SCRIPT], BACKUP_TIMER: BACKUP_IN_PLACE[BACKUP_TIMER]}
    result = plan(probed(paths=left, jobs={"backup": RUNNING}))
    assert result["converge"] and action(result, "backup") == "remove"
    assert result["jobs"]["backup"]["files"] == [SCRIPT, BACKUP_TIMER]
    assert f"{SCRIPT}: present, expected absent" in result["drift"]
    # Removing it restarts nothing, and once it is gone the run is a no-op again.
    assert action(result) == "none" and result["write"] == []
    assert not plan(IN_PLACE)["converge"]
    # A job still loaded whose files are gone is removed too.
    assert action(plan(probed(jobs={"backup": RUNNING})), "backup") == "remove"


def test_a_switch_with_backups_on_backs_up_first_unless_nothing_to_back_up() -> None:
    venv = {**IN_PLACE["paths"][f"{BASE}/venv"], "link_target": OLD}
    state = probed(paths={f"{BASE}/venv": venv, **BACKUP_IN_PLACE}, jobs={"backup": RUNNING})
    assert plan(state, layout=with_backups())["backup_first"]
    assert not plan(state)["backup_first"], "backups off"
    assert not plan(state, layout=with_backups(), check_mode=True)["backup_first"]
    uninitialised = probed(paths={f"{BASE}/venv": venv, SERVERVERSION: None})
    assert not plan(uninitialised, layout=with_backups())["backup_first"], "no data yet"
    assert not plan(probed(jobs={"backup": RUNNING}), layout=with_backups())["backup_first"]


# --- Restore -------------------------------------------------------------------------------------

EXPORT = "/srv/restore/devpi-export-20261201T031700Z"
RESTORE = {"from": EXPORT, "marker": f"{SERVER_DIR}/.mcquack-restored-from"}
RESTORING = {**LAYOUT, "restore": RESTORE}


def fresh(*present: str) -> dict[str, Any]:
    paths = {path: a_file("root", "0644", "x") for path in present}
    return {"paths": paths, "jobs": {"devpi": GONE},
            "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip


def test_a_restore_replaces_the_init_and_rotates_the_root_password() -> None:
    result = plan(fresh(f"{EXPORT}/dataindex.json"), layout=RESTORING)
    assert result["restore"] and not result["initialise"] and result["errors"] == []
    # The root password is the exported one: check it, and set devpi_root_password if it differs.
    assert result["check_password"]


def test_a_restore_from_a_directory_that_is_no_export_is_refused_by_name() -> None:
    result = plan(fresh(), layout=RESTORING)
    (error,) = result["errors"]
    assert error.startswith(f"devpi_restore_from: {EXPORT} on devpi-default is not a devpi export")
    assert "dataindex.json" in error and "Nothing was changed" in error


def test_a_restore_onto_a_server_dir_with_data_is_refused() -> None:
    result = plan(probed(), layout=RESTORING)
    (error,) = result["errors"]
    assert error.startswith(f"devpi_restore_from is set ({EXPORT}), but {SERVER_DIR}")
    assert not result["restore"]


def test_the_restored_server_dir_is_recognised_by_its_marker() -> None:
    marker = a_file("devpi", "0600", hashlib.sha1(EXPORT.encode()).hexdigest())
    result = plan(probed(paths={RESTORE["marker"]: marker}), layout=RESTORING)
    assert result["errors"] == [] and not result["restore"] and not result["converge"]
    # A marker of another export is someone else's data.
    other = {**marker, "sha1": hashlib.sha1(b"/srv/other").hexdigest()}
    assert plan(probed(paths={RESTORE["marker"]: other}), layout=RESTORING)["errors"]


def test_a_restore_is_planned_even_when_all_else_is_in_place() -> None:
    state = probed(paths={SERVERVERSION: None, f"{EXPORT}/dataindex.json": a_file("r", "0644", "")})
    result = plan(state, layout=RESTORING)
    assert result["converge"] and result["restore"] and action(result) == "restart"


def test_the_probe_reads_every_managed_file_and_a_restore_s_files() -> None:
    paths = devpi_probe_paths(RESTORING)
    assert {BASE, CONFIG, UNIT, SCRIPT, BACKUP_TIMER, SERVERVERSION} <= set(paths)
    assert {f"{EXPORT}/dataindex.json", RESTORE["marker"]} <= set(paths)
    assert f"{EXPORT}/dataindex.json" not in devpi_probe_paths(LAYOUT)


def test_the_filters_are_registered() -> None:
    filters = FilterModule().filters()
    assert filters["devpi_plan"] is devpi_plan and filters["devpi_recovery"] is devpi_recovery


# --- Replication (devpi_role) ----------------------------------------------------------------


def replica_state(**changes: Any) -> dict[str, Any]:
    """A replica in place: its probe sends no password and compares no index."""
    state = probed(**changes)
    state["server"] = {"answers": True, "seconds": 0.01}
    state.setdefault("node", {"exists": True, "role": "replica"})
    return state


def test_a_replica_in_place_is_a_no_op_without_password_or_mirror_checks() -> None:
    result = plan(replica_state(), role="replica")
    assert not result["converge"] and not result["check_health"]
    # Its users, root password and root/pypi are the primary's: replicated, not declared here.
    assert not result["check_password"] and not result["declare_root_pypi"]
    assert not result["check_sync"] and not result["promote"] and result["errors"] == []


def test_a_replica_that_restarts_waits_for_sync() -> None:
    state = replica_state(paths={CONFIG: {**IN_PLACE["paths"][CONFIG], "sha1": "other"}})
    result = plan(state, password=False, role="replica")
    assert action(result) == "restart" and result["check_sync"]
    assert not result["declare_root_pypi"]


def test_a_fresh_replica_is_initialised_without_a_password_and_waits_for_sync() -> None:
    state = {"paths": {}, "jobs": {"devpi": GONE}, "node": {"exists": False},
             "server": {"answers": False, "seconds": 0.0, "error": "refused"}}  # fmt: skip
    result = plan(state, password=False, role="replica")
    assert result["initialise"] and action(result) == "start" and result["check_sync"]
    assert result["errors"] == [] and not result["check_password"]


def test_a_former_replica_declared_primary_is_promoted_with_a_fresh_start() -> None:
    result = plan(replica_state(), role="primary")
    assert result["promote"] and result["converge"] and action(result) == "start"
    assert not result["initialise"] and not result["check_sync"]
    assert result["check_health"] and result["declare_root_pypi"]


@pytest.mark.parametrize(
    ("role", "node_role"),
    [("replica", "primary"), ("replica", "standalone"), ("standalone", "replica")],
)
def test_a_role_devpi_would_refuse_on_this_server_dir_is_refused_by_name(
    role: str, node_role: str
) -> None:
    state = replica_state()
    state["node"] = {"exists": True, "role": node_role}
    result = plan(state, role=role)
    (error,) = result["errors"]
    assert error.startswith(
        f"devpi_role is {role}, but {SERVER_DIR} holds the data of a {node_role}"
    )
    assert not result["promote"] and result["node_role"] == node_role


def test_a_standalone_server_dir_may_become_a_primary_with_a_restart() -> None:
    state = probed(paths={CONFIG: {**IN_PLACE["paths"][CONFIG], "sha1": "other"}})
    state["node"] = {"exists": True, "role": "standalone"}
    result = plan(state, role="primary")
    assert result["errors"] == [] and not result["promote"]
    assert action(result) == "restart"


SHARED = "s" * 40


def test_a_given_secret_that_differs_is_named_without_its_hashes() -> None:
    result = plan(replica_state(), password=False, role="replica", shared_secret=SHARED)
    assert result["drift"] == [f"{SECRET}: content differs from the one declared"]
    assert action(result) == "restart" and result["check_sync"] and result["secret_given"]
    assert hashlib.sha1(SHARED.encode()).hexdigest() not in str(result)
    assert SHARED not in str(result)


def test_the_primary_s_secret_read_on_its_host_is_the_given_one() -> None:
    read = {"content": base64.b64encode(SHARED.encode()).decode(), "changed": False}
    secret = a_file("devpi", "0600", hashlib.sha1(SHARED.encode()).hexdigest())
    result = plan(
        replica_state(paths={SECRET: secret}), password=False, role="replica", primary_secret=read
    )
    assert result["secret_given"] and not result["converge"] and result["errors"] == []


@pytest.mark.parametrize(
    ("read", "why"),
    [
        ({"failed": False, "msg": "file not found: /var/lib/devpi/secret"}, "file not found"),
        ({"content": base64.b64encode(b"short").decode()}, "fewer than 32 characters"),
    ],
)
def test_a_primary_secret_that_cannot_be_read_is_refused_naming_the_host(
    read: dict[str, Any], why: str
) -> None:
    result = plan(replica_state(), password=False, role="replica", primary_secret=read)
    (error,) = result["errors"]
    assert error.startswith(f"devpi_primary_host: could not read the primary's secret {SECRET}")
    assert "devpi-primary" in error and why in error
    # Not read at all (skipped): nothing to refuse, the role keeps or generates its own.
    assert plan(replica_state(), role="replica", primary_secret={"skipped": True})["errors"] == []


@pytest.mark.parametrize(
    ("role", "given", "heard", "read"),
    [
        ("standalone", False, None, False),
        ("replica", True, None, False),
        ("replica", False, None, True),
        ("replica", False, 4.2, False),
        ("replica", False, 120.0, True),
    ],
)
def test_a_replica_reads_its_primary_s_secret_unless_given_or_heard_lately(
    role: str, given: bool, heard: float | None, read: bool
) -> None:
    state = {"server": {"answers": True, "replica": {"heard_from_primary_s": heard}}}
    assert devpi_read_primary_secret(state, role, given) is read


# --- Recovery --------------------------------------------------------------------------------


def test_the_files_devpi_serves_with_are_kept_before_they_change() -> None:
    changed = {CONFIG: {**IN_PLACE["paths"][CONFIG], "sha1": "old"},
               UNIT: {**IN_PLACE["paths"][UNIT], "sha1": "old"}}  # fmt: skip
    result = plan(probed(paths=changed))
    # Each with the owner and mode it is put back with (a copy would be root's).
    assert result["last_good"] == [
        {"path": CONFIG, "kept": f"{BASE}/last-good/devpi-server.yml", "restart": "runtime",
         "owner": "devpi", "mode": "0640"},
        {"path": UNIT, "kept": f"{BASE}/last-good/devpi.service", "restart": "definition",
         "owner": "root", "mode": "0644"},
    ]  # fmt: skip
    # Not while devpi does not serve with them, not for a file that is new, not for backups.
    assert plan(probed(paths=changed, server={"answers": False}))["last_good"] == []
    assert plan(probed(paths={CONFIG: None}))["last_good"] == []
    timer = {**BACKUP_IN_PLACE, BACKUP_TIMER: {**BACKUP_IN_PLACE[BACKUP_TIMER], "sha1": "old"}}
    assert (
        plan(probed(paths=timer, jobs={"backup": RUNNING}), layout=with_backups())["last_good"]
        == []
    )


def test_a_failed_start_on_new_files_puts_back_the_ones_that_served() -> None:
    kept = [{"path": CONFIG, "kept": f"{BASE}/last-good/devpi-server.yml", "restart": "runtime"}]
    result = devpi_recovery(
        {"switch": False, "previous_venv": "", "last_good": kept}, "Invalid host/port"
    )
    assert result == {"action": "rollback", "incompatible": False, "switch_back": False,
                      "restore": kept, "reload": False}  # fmt: skip
    unit = [
        *kept,
        {"path": UNIT, "kept": f"{BASE}/last-good/devpi.service", "restart": "definition"},
    ]
    both = devpi_recovery({"switch": True, "previous_venv": OLD, "last_good": unit}, "Traceback")
    assert both["action"] == "rollback" and both["switch_back"] and both["reload"]


@pytest.mark.parametrize(
    ("switch", "previous", "log", "allow", "wanted"),
    [
        (False, "", "Traceback", False, "fail"),
        (True, "", "Traceback", True, "fail"),
        (True, OLD, "Traceback", False, "rollback"),
        (True, OLD, "Incompatible state: server 7.0.0", False, "rollback"),
        (True, OLD, "Incompatible state: server 7.0.0", True, "migrate"),
        (True, OLD, "Address already in use", True, "rollback"),
    ],
)
def test_recovery_is_chosen_from_the_plan_and_the_log(
    switch: bool, previous: str, log: str, allow: bool, wanted: str
) -> None:
    result = devpi_recovery({"switch": switch, "previous_venv": previous}, log, allow)
    assert result["action"] == wanted
    assert result["incompatible"] == ("Incompatible state" in log)


def test_a_dry_run_asks_devpi_only_where_it_answers() -> None:
    fresh = {"paths": {}, "jobs": {"devpi": GONE}, "server": {"answers": False}}
    dry = plan(fresh, check_mode=True, content_declared=True)
    assert dry["converge"] and action(dry) == "start" and not dry["backup_first"]
    assert not dry["declare_root_pypi"] and not dry["declare_content"] and not dry["check_password"]
    converged = plan(IN_PLACE, check_mode=True, content_declared=True)
    assert not converged["converge"] and converged["declare_content"]
