# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_plan filters: every decision of a converge of the devpi role."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.mcquack.devpi.plugins.filter.drift import drift

DOCUMENTATION = r"""
name: devpi_plan
author: mcquack.devpi developers (@mcquack)
version_added: 0.1.0
short_description: Decide what a converge of the devpi role does, from one probe
description:
  - Takes the result of M(mcquack.devpi.devpi_probe), the role's layout (its managed files, its
    jobs and the other paths it expects) and the text rendered for each managed file, and
    returns the plan the role's tasks branch on, so every decision is made once, before
    anything changes. The tasks act on the plan's fields and decide nothing themselves.
  - "Each job (devpi itself, the scheduled backup, ...) gets one action for its service
    manager: C(none); C(start) when it is not running (launchd C(bootstrap), systemd enable +
    start); C(reload) when a file of its definition changed (the plist or unit: launchd
    C(bootout) + C(bootstrap), systemd C(daemon-reload) + restart); C(restart) when something
    it runs changed (for devpi: the config, the secret, the server-dir or the venv; launchd
    C(kickstart -k), systemd restart); C(remove) when the job is switched off but still there."
  - The same file holds the filter P(mcquack.devpi.devpi_recovery#filter), which decides how to
    recover when devpi does not answer after this run's (re)start.
seealso:
  - module: mcquack.devpi.devpi_probe
  - plugin: mcquack.devpi.drift
    plugin_type: filter
options:
  _input:
    description: The registered result of M(mcquack.devpi.devpi_probe).
    type: dict
    required: true
  layout:
    description:
      - C(manager) (C(launchd) or C(systemd)); C(files), the managed files as a list of C(path),
        C(owner), C(mode), C(job) (whose file it is) and C(restart) (C(runtime), C(definition) or
        C(none), what a change of it needs); C(jobs), each job's name and whether it is enabled
        (the files of a job that is not must be absent); C(paths), the expected attributes of
        other paths (as for P(mcquack.devpi.drift#filter)), each with an optional C(restart) and
        an optional C(redact) (a secret's file, whose differing C(sha1) is named without values).
      - C(secret), C(venv_dir), C(target_venv), C(marker), C(server_dir), C(node_info),
        C(last_good_dir) (where the files devpi served with are kept during a change),
        C(adopted_venv), C(root_pypi) (the index name the probe compared) and C(host) (for
        messages); optional C(restore), the export to restore from instead of initialising, as
        C(from) (empty for none) and C(marker) (the file a restore leaves in the server-dir,
        holding the export's path).
    type: dict
    required: true
  rendered:
    description: The text rendered for each of the layout's C(files), by path.
    type: dict
    required: true
  root_password_given:
    description: Whether the run has a root password to check and to log in with.
    type: bool
    default: false
  role:
    description:
      - The replication role declared for this host (C(devpi_role)). A C(replica) takes its users,
        indexes, root password and C(root/pypi) from its primary, so the plan checks none of them;
        a server-dir whose C(.nodeinfo) (the probe's C(node)) says C(replica) is promoted under
        C(primary).
    type: str
    default: standalone
    choices: [standalone, primary, replica]
  shared_secret:
    description: The secret the run was given (C(devpi_shared_secret); empty when it was not).
    type: str
    default: ""
  primary_secret:
    description:
      - The registered result of reading the primary's secret file (M(ansible.builtin.slurp)) on a
        replica, skipped where it was not read. A read that failed, or a secret shorter than 32
        characters, is one of RV(_value.errors).
    type: dict
  content_declared:
    description: Whether the run declares users or indexes (C(devpi_users), C(devpi_indexes)).
    type: bool
    default: false
  check_mode:
    description:
      - Whether the run is in check mode. A dry run takes no backup, and asks devpi (root password,
        C(root/pypi), users and indexes) only where devpi answered the probe.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Plan the run
  ansible.builtin.set_fact:
    plan: "{{ probe | mcquack.devpi.devpi_plan(layout, rendered, root_password_given=true) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    drift:
      description: One line per path or job that differs from what is declared (see P(mcquack.devpi.drift#filter)).
      type: list
      elements: str
    errors:
      description:
        - Why this run must not go on, one message each, naming the variable to change (a first
          initialisation without a root password, a restore that cannot be done here, a role the
          server-dir cannot take). The role fails with them before changing anything.
      type: list
      elements: str
    converge:
      description: Whether anything is to be brought into place (else the act steps are skipped).
      type: bool
    initialise:
      description: The server-dir has no C(.serverversion) and is initialised with C(devpi-init) this run (not restored).
      type: bool
    secret_given:
      description: The run was given the secret to write (shared with the primary); else devpi-gen-secret makes one once.
      type: bool
    build_venv:
      description: The venv for the pins has no completeness marker and is built (or completed) this run.
      type: bool
    switch:
      description: The C(venv) symlink does not point at the venv for the pins and is switched this run.
      type: bool
    adopt:
      description: C(venv) is a plain directory, moved aside before the switch.
      type: bool
    previous_venv:
      description: The venv to roll back to after a switch (empty when there is none).
      type: str
    write:
      description: The managed files to write (they differ from their rendered text, mode or owner), each with C(path), C(owner), C(mode) and C(content).
      type: list
      elements: dict
    last_good:
      description:
        - "The files of devpi's own job that this run overwrites while devpi serves with them,
          each with C(path), C(kept) (where the role keeps it, in the layout's C(last_good_dir)),
          C(owner) and C(mode) (its table entry's, what it is put back with) and C(restart) (what
          putting it back needs): a start that fails on the new files puts
          these back (P(mcquack.devpi.devpi_recovery#filter))."
      type: list
      elements: dict
    jobs:
      description:
        - Per job, C(action) (C(none), C(start), C(restart), C(reload) or C(remove), as described
          above) and C(files), the job's managed files that exist (what C(remove) deletes).
      type: dict
    backup_first:
      description: Run the backup job before the switch (backups on, a switch on a server-dir with data, not check mode).
      type: bool
    check_health:
      description: Whether to wait for devpi to answer (it did not answer the probe, or something changes).
      type: bool
    check_password:
      description: Whether to check (and if need be set) the root password.
      type: bool
    declare_root_pypi:
      description: Whether the C(root/pypi) index differs from its declared options (or devpi did not answer).
      type: bool
    declare_content:
      description: Whether to declare the users and indexes (some are declared, and this host is not a replica).
      type: bool
    content_on_primary:
      description: Users or indexes are declared for a replica, which takes them from its primary instead.
      type: bool
    restore:
      description: The server-dir is not initialised and is restored from the export this run (instead of C(initialise)).
      type: bool
    promote:
      description:
        - The server-dir was a replica's and the host is declared C(primary). The role stops
          devpi, runs C(devpi-fsck) on the server-dir and starts it as primary (devpi's action is C(start)).
      type: bool
    node_role:
      description: The role the server-dir's C(.nodeinfo) records (empty when there is none).
      type: str
    check_sync:
      description: A replica whose health is checked also waits until it has reached its primary's serial.
      type: bool
"""

# What each job needs, from the strongest: a job that is not running is started (its new
# definition with it); a changed definition is reloaded (its start runs the new runtime too).
_ACTIONS = ("remove", "start", "reload", "restart", "none")
_RESTART_ACTION = {"definition": "reload", "runtime": "restart"}


def expected_paths(
    layout: Mapping[str, Any], rendered: Mapping[str, str], secret_sha1: str = ""
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]], list[str]]:
    """The expected attributes of every path that must exist (rendered files by the SHA-1 of
    their text, as the copy module writes it: UTF-8), per path the job and the restart a
    change of it needs, and the files of switched-off jobs (which must be absent)."""
    expected: dict[str, dict[str, Any]] = {}
    needs: dict[str, tuple[str, str]] = {}
    for path, attributes in layout["paths"].items():
        expected[path] = {k: v for k, v in attributes.items() if k not in ("restart", "redact")}
        if "restart" in attributes:
            needs[path] = ("devpi", attributes["restart"])
    if secret_sha1 and layout.get("secret") in expected:
        expected[layout["secret"]]["sha1"] = secret_sha1
    enabled: Mapping[str, Any] = layout.get("jobs") or {}
    absent: list[str] = []
    files: Sequence[Mapping[str, Any]] = layout.get("files") or []
    for entry in files:
        path, job = entry["path"], entry.get("job", "devpi")
        if not enabled.get(job, True):
            absent.append(path)
            continue
        expected[path] = {
            "type": "file",
            "mode": entry["mode"],
            "owner": entry["owner"],
            "sha1": hashlib.sha1(rendered[path].encode("utf-8")).hexdigest(),
        }
        needs[path] = (job, entry.get("restart", "none"))
    return expected, needs, absent


def devpi_job_running(state: Mapping[str, Any] | None, manager: str) -> bool:
    """Whether a job is in place: launchd has it loaded; systemd has it active and enabled."""
    if not state:
        return False
    if manager == "launchd":
        return bool(state.get("loaded"))
    return bool(state.get("active")) and bool(state.get("enabled"))


def devpi_plan(
    probed: Mapping[str, Any],
    layout: Mapping[str, Any],
    rendered: Mapping[str, str],
    root_password_given: bool = False,
    role: str = "standalone",
    shared_secret: str = "",
    primary_secret: Mapping[str, Any] | None = None,
    content_declared: bool = False,
    check_mode: bool = False,
) -> dict[str, Any]:
    paths: Mapping[str, Mapping[str, Any]] = probed.get("paths") or {}
    secret, secret_error = given_secret(layout, shared_secret, primary_secret)
    secret_sha1 = hashlib.sha1(secret.encode("utf-8")).hexdigest() if secret else ""
    expected, needs, absent = expected_paths(layout, rendered, secret_sha1)
    redacted = [layout.get("secret")] if secret_sha1 else []
    redacted += [path for path, attributes in layout["paths"].items() if attributes.get("redact")]
    lines = drift(expected, paths, [str(path) for path in redacted])
    lines += [f"{path}: present, expected absent" for path in absent if _exists(paths, path)]
    server = probed.get("server") or {}
    answered = bool(server.get("answers"))

    venv = paths.get(layout["venv_dir"]) or {"exists": False}
    target_active = venv.get("type") == "link" and venv.get("link_target") == layout["target_venv"]
    marker = paths.get(f"{layout['target_venv']}/{layout['marker']}") or {}
    initialised = _exists(paths, f"{layout['server_dir']}/.serverversion")
    build_venv = not marker.get("exists")
    adopt = venv.get("type") == "directory"
    previous = ""
    if venv.get("type") == "link" and not target_active:
        previous = str(venv.get("link_target") or "")
    elif adopt:
        previous = str(layout.get("adopted_venv") or "")

    restore_from, restore_in_place, restore_source = _restore(layout, paths)
    restore = bool(restore_from) and not initialised
    # refused: the server-dir holds data that is not this export's; missing: no export there
    restore_state = {
        "from": restore_from,
        "refused": bool(restore_from) and initialised and not restore_in_place,
        "missing": restore and not restore_source,
    }
    node_role = str((probed.get("node") or {}).get("role") or "")
    replica = role == "replica"
    promote = initialised and node_role == "replica" and role == "primary"

    changed = [path for path in expected if _differs(expected[path], paths.get(path))]
    jobs = _jobs(probed, layout, needs, changed, paths)
    devpi = jobs["devpi"]
    lines += [
        f"the job {name} is not running" for name, job in jobs.items() if job["action"] == "start"
    ]
    if promote:
        devpi["action"] = "start"
    elif devpi["action"] in ("none", "restart") and (
        not target_active or not initialised or (build_venv and target_active)
    ):
        devpi["action"] = "restart"
    converge = bool(lines) or restore or promote or devpi["action"] != "none"
    check_health = converge or not answered
    # A dry run can ask devpi only where it already answers: nothing was started for it.
    reachable = answered or not check_mode
    index = (server.get("indexes") or {}).get(layout.get("root_pypi", "root/pypi")) or {}
    root_pypi_in_place = bool(index.get("exists")) and not index.get("changes")
    files: Sequence[Mapping[str, Any]] = layout.get("files") or []
    # The files devpi serves with now, kept before they are overwritten so that a start that
    # fails on the new ones can put them back: only while devpi answers (they served).
    keep = str(layout.get("last_good_dir") or "")
    table = {entry["path"]: entry for entry in files}
    last_good = [
        {"path": path, "kept": f"{keep}/{path.rsplit('/', 1)[-1]}", "restart": needs[path][1],
         "owner": table[path]["owner"], "mode": table[path]["mode"]}
        for path in changed
        if keep and answered and needs.get(path, ("", ""))[0] == "devpi"
        and needs[path][1] in ("runtime", "definition") and _exists(paths, path)
        and path in table
    ]  # fmt: skip
    return {
        "drift": lines,
        "errors": [secret_error] * bool(secret_error)
        + _errors(layout, role, node_role, initialised, root_password_given, restore_state),
        "converge": converge,
        "initialise": not initialised and not restore,
        "secret_given": bool(secret),
        "build_venv": build_venv,
        "switch": not target_active,
        "adopt": adopt,
        "previous_venv": previous,
        "write": [
            {
                "path": entry["path"],
                "owner": entry["owner"],
                "mode": entry["mode"],
                "content": rendered[entry["path"]],
            }
            for entry in files
            if entry["path"] in changed
        ],
        "jobs": jobs,
        "last_good": last_good,
        "backup_first": (
            bool((layout.get("jobs") or {}).get("backup"))
            and not target_active
            and initialised
            and not check_mode
        ),
        "check_health": check_health,
        "check_password": (
            root_password_given
            and reachable
            and not replica
            and (initialised or restore)
            and (check_health or not server.get("login", False))
        ),
        "declare_root_pypi": reachable and not replica and (check_health or not root_pypi_in_place),
        "declare_content": reachable and content_declared and not replica,
        "content_on_primary": content_declared and replica,
        "restore": restore,
        "promote": promote,
        "node_role": node_role,
        "check_sync": replica and check_health,
    }


def _jobs(
    probed: Mapping[str, Any],
    layout: Mapping[str, Any],
    needs: Mapping[str, tuple[str, str]],
    changed: Sequence[str],
    paths: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Each job's action and its files that exist (what a removal deletes)."""
    manager = str(layout.get("manager") or "systemd")
    states: Mapping[str, Any] = probed.get("jobs") or {}
    if not states and "service" in probed:  # a probe of devpi's job alone
        states = {"devpi": probed.get("service")}
    enabled: Mapping[str, Any] = layout.get("jobs") or {"devpi": True}
    files: Sequence[Mapping[str, Any]] = layout.get("files") or []
    jobs: dict[str, dict[str, Any]] = {}
    for name, on in enabled.items():
        own = [entry["path"] for entry in files if entry.get("job", "devpi") == name]
        present = [path for path in own if _exists(paths, path)]
        state = states.get(name)
        if not on:
            there = bool(present) or bool(state and (state.get("loaded") or state.get("active")))
            jobs[name] = {"action": "remove" if there else "none", "files": present}
            continue
        wanted = {_RESTART_ACTION.get(needs[path][1], "none")
                  for path in changed if path in needs and needs[path][0] == name}  # fmt: skip
        if not devpi_job_running(state, manager):
            wanted.add("start")
        action = next((a for a in _ACTIONS if a in wanted), "none")
        jobs[name] = {"action": action, "files": present}
    return jobs


def _errors(
    layout: Mapping[str, Any],
    role: str,
    node_role: str,
    initialised: bool,
    root_password_given: bool,
    restore: Mapping[str, Any],
) -> list[str]:
    """Why the run must stop before changing anything, each naming what to change."""
    server_dir = layout.get("server_dir", "the server-dir")
    errors = []
    if not initialised and not root_password_given and role != "replica":
        errors.append(
            f"devpi_root_password must be set while {server_dir} is not initialised yet: "
            "devpi-init needs it to create the root user."
        )
    if restore["refused"]:
        errors.append(
            f"devpi_restore_from is set ({restore['from']}), but {server_dir} already holds devpi "
            "data that was not restored from it: the role restores only into a server-dir that is "
            "not initialised, and changed nothing. Remove devpi_restore_from, or move the "
            "server-dir aside first."
        )
    if restore["missing"]:
        errors.append(
            f"devpi_restore_from: {restore['from']} on {layout.get('host', 'the host')} is not a "
            "devpi export (it has no dataindex.json, which devpi-export writes at its top): give "
            "the export directory itself (devpi-export-<time>, copied whole from the backup "
            "directory). Nothing was changed."
        )
    conflict = initialised and (
        (role == "replica" and node_role not in ("", "replica"))
        or (role == "standalone" and node_role == "replica")
    )
    if conflict:
        advice = (
            "devpi-server runs a replica only on a server-dir initialised as one: move the "
            "server-dir aside (or use a fresh host) to make this host a replica."
            if role == "replica"
            else "Set devpi_role: primary to promote this replica (stop, devpi-fsck, start as "
            "primary), or devpi_role: replica to keep it a replica."
        )
        errors.append(
            f"devpi_role is {role}, but {server_dir} holds the data of a {node_role} "
            f"({layout.get('node_info', '.nodeinfo')}), and nothing was changed. {advice}"
        )
    return errors


def given_secret(
    layout: Mapping[str, Any], shared: str, primary: Mapping[str, Any] | None
) -> tuple[str, str]:
    """The secret a primary and its replicas share, as given to this run (devpi_shared_secret,
    else the primary's read on its host; empty: the role generates one), and why the primary's
    could not be used."""
    if shared:
        return shared, ""
    if not primary or primary.get("skipped"):
        return "", ""
    text = ""
    if "content" in primary:
        text = base64.b64decode(str(primary["content"])).decode("utf-8", "replace")
    if len(text) >= 32 and not re.search(r"[\r\n]", text.strip("\n")):
        return text, ""
    why = str(primary.get("msg") or "it holds fewer than 32 characters")
    return "", (
        f"devpi_primary_host: could not read the primary's secret {layout.get('primary_secret_file', '')} "
        f"(devpi_primary_secret_file) on {layout.get('primary_host', '')} ({why}). Converge the primary "
        "first, or give the secret as devpi_shared_secret (from a vault). Nothing was changed."
    )


def devpi_read_primary_secret(probed: Mapping[str, Any], role: str, secret_given: bool) -> bool:
    """Whether a replica reads its primary's secret from the primary's host this run: not when
    the secret is given, and not when the probe found the running replica answered by its
    primary in the last 90 s (the primary checks every request's signature, so the secret in
    place is the primary's; a no-op converge of a replica then stays the one probe)."""
    if role != "replica" or secret_given:
        return False
    heard = ((probed.get("server") or {}).get("replica") or {}).get("heard_from_primary_s")
    return heard is None or float(heard) >= 90


def devpi_recovery(
    plan: Mapping[str, Any], log_tail: str, allow_migration: bool = False
) -> dict[str, Any]:
    """How to recover when devpi did not answer after this run's (re)start: C(migrate) (a new
    devpi-server refused the server-dir, "Incompatible state", and migration is allowed),
    C(rollback) (this run switched venvs and has one to go back to, and/or overwrote files devpi
    served with: put back what served) or C(fail). With C(rollback): C(switch_back) (the venv),
    C(restore) (the files to put back) and C(reload) (a service definition is among them)."""
    # devpi-server's own words for a server-dir of another database schema.
    incompatible = "Incompatible state" in log_tail
    switch_back = bool(plan.get("switch") and plan.get("previous_venv"))
    restore: list[Mapping[str, Any]] = list(plan.get("last_good") or [])
    if switch_back and allow_migration and incompatible:
        action = "migrate"
    elif switch_back or restore:
        action = "rollback"
    else:
        action = "fail"
    return {
        "action": action,
        "incompatible": incompatible,
        "switch_back": switch_back,
        "restore": restore,
        "reload": any(entry.get("restart") == "definition" for entry in restore),
    }


def _exists(paths: Mapping[str, Mapping[str, Any]], path: str) -> bool:
    return bool((paths.get(path) or {}).get("exists"))


def _restore(
    layout: Mapping[str, Any], paths: Mapping[str, Mapping[str, Any]]
) -> tuple[str, bool, bool]:
    """The export to restore from (empty: none), whether the server-dir carries the marker of a
    restore from it, and whether the export's dataindex.json is on the host."""
    restore: Mapping[str, Any] = layout.get("restore") or {}
    source = str(restore.get("from") or "")
    if not source:
        return "", False, False
    marker = paths.get(str(restore.get("marker"))) or {}
    wanted = hashlib.sha1(source.encode("utf-8")).hexdigest()
    in_place = bool(marker.get("exists")) and marker.get("sha1") == wanted
    return source, in_place, _exists(paths, restore_source(layout))


def restore_source(layout: Mapping[str, Any]) -> str:
    """The file that shows an export is one: devpi-export's dataindex.json at its top."""
    source = str((layout.get("restore") or {}).get("from") or "")
    return f"{source}/dataindex.json" if source else ""


def devpi_probe_paths(layout: Mapping[str, Any]) -> list[str]:
    """Every path the probe reads for the plan: the expected ones, every managed file (also of
    switched-off jobs), the server-dir's version, and a restore's export and marker."""
    files: Sequence[Mapping[str, Any]] = layout.get("files") or []
    found = list(layout["paths"]) + [entry["path"] for entry in files]
    found.append(f"{layout['server_dir']}/.serverversion")
    if (layout.get("restore") or {}).get("from"):
        found += [restore_source(layout), str(layout["restore"]["marker"])]
    return found


def _differs(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    return bool(drift({"path": expected}, {"path": actual or {"exists": False}}))


class FilterModule:
    """Ansible's entry point for the filters in this file."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "devpi_plan": devpi_plan,
            "devpi_recovery": devpi_recovery,
            "devpi_job_running": devpi_job_running,
            "devpi_read_primary_secret": devpi_read_primary_secret,
            "devpi_probe_paths": devpi_probe_paths,
        }
