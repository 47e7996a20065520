# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_plan filter: what one converge of the devpi role will do."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.mcquack.devpi.plugins.filter.drift import drift

DOCUMENTATION = r"""
name: devpi_plan
author: mcquack.devpi developers (@mcquack)
version_added: 0.1.0
short_description: Decide what a converge of the devpi role does, from one probe
description:
  - Takes the result of M(mcquack.devpi.devpi_probe), the role's layout (the expected paths,
    the managed files and what a change of each needs) and the text rendered for each managed
    file, and returns the plan the role's C(tasks/main.yml) branches on, so every decision is
    made once, before anything changes.
  - C(restart) is C(start) when the service is not running (launchd C(bootstrap), systemd
    C(start)); C(definition) when the plist or unit changes (launchd C(bootout) + C(bootstrap),
    systemd C(daemon-reload) + C(restart)); C(runtime) when the config, the secret, the server-dir
    or the venv devpi runs changes (launchd C(kickstart -k), systemd C(restart)); else C(none).
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
      - C(paths), the expected attributes per path (as for P(mcquack.devpi.drift#filter)), each
        with an optional C(restart) (C(runtime) or C(definition)) that a change of it needs and
        an optional C(redact) (a secret's file, whose differing C(sha1) is named without values);
        C(files), the rendered files as a list of C(path), C(owner), C(mode), C(restart);
        C(venv_dir), C(target_venv), C(marker), C(server_version), C(adopted_venv) and
        C(root_pypi) (the index name the probe compared).
      - Optional - C(absent), paths that must not exist (a file the role removes, such as a
        switched-off backup job's); C(restore), the export to restore from instead of
        initialising, as C(from) (empty for none), C(source) (its C(dataindex.json)),
        C(marker) (the file a restore leaves in the server-dir) and C(marker_text) (what it
        holds).
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
      description: One line per path that differs from what is declared (see P(mcquack.devpi.drift#filter)).
      type: list
      elements: str
    converge:
      description: Whether anything is to be brought into place (else the converge steps are skipped).
      type: bool
    initialise:
      description: The server-dir has no C(.serverversion) and is initialised this run.
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
    restart:
      description: C(none), C(start), C(runtime) or C(definition), as described above.
      type: str
    check_health:
      description: Whether to wait for devpi to answer (it did not answer the probe, or something changes).
      type: bool
    check_password:
      description: Whether to check (and if need be set) the root password.
      type: bool
    declare_root_pypi:
      description: Whether the C(root/pypi) index differs from its declared options (or devpi did not answer).
      type: bool
    restore:
      description: The server-dir is not initialised and is restored from the export this run (instead of C(initialise)).
      type: bool
    restore_missing:
      description: A restore is asked for, but the export's C(dataindex.json) is not on the host.
      type: bool
    restore_refused:
      description:
        - A restore is asked for, but the server-dir already holds data that did not come from that
          export (it has no restore marker with its path). The role refuses before changing anything.
      type: bool
    promote:
      description:
        - The server-dir was a replica's and the host is declared C(primary). The role stops
          devpi, runs C(devpi-fsck) on the server-dir and starts it as primary (C(restart) is C(start)).
      type: bool
    role_conflict:
      description:
        - The host is declared C(replica) but its server-dir was initialised or run as another role
          (devpi-server refuses to run it as a replica), or declared C(standalone) while its
          server-dir is a replica's (devpi-server would go on running it as a replica). The role
          refuses before changing anything.
      type: bool
    node_role:
      description: The role the server-dir's C(.nodeinfo) records (empty when there is none).
      type: str
    check_sync:
      description: A replica whose health is checked also waits until it has reached its primary's serial.
      type: bool
"""


def expected_paths(
    layout: Mapping[str, Any], rendered: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The expected attributes of every path (rendered files by the SHA-1 of their text, as
    the copy module writes it: UTF-8), and the restart each path's change needs."""
    expected: dict[str, dict[str, Any]] = {}
    restart_for: dict[str, str] = {}
    for path, attributes in layout["paths"].items():
        expected[path] = {k: v for k, v in attributes.items() if k not in ("restart", "redact")}
        if "restart" in attributes:
            restart_for[path] = attributes["restart"]
    files: Sequence[Mapping[str, Any]] = layout.get("files") or []
    for entry in files:
        path = entry["path"]
        expected[path] = {
            "type": "file",
            "mode": entry["mode"],
            "owner": entry["owner"],
            "sha1": hashlib.sha1(rendered[path].encode("utf-8")).hexdigest(),
        }
        restart_for[path] = entry["restart"]
    return expected, restart_for


def devpi_plan(
    probed: Mapping[str, Any],
    layout: Mapping[str, Any],
    rendered: Mapping[str, str],
    root_password_given: bool = False,
    role: str = "standalone",
) -> dict[str, Any]:
    paths: Mapping[str, Mapping[str, Any]] = probed.get("paths") or {}
    expected, restart_for = expected_paths(layout, rendered)
    redacted = [path for path, attributes in layout["paths"].items() if attributes.get("redact")]
    lines = drift(expected, paths, redacted)
    service = probed.get("service") or {}
    running = bool(service) and all(service.values())
    server = probed.get("server") or {}
    answered = bool(server.get("answers"))

    venv = paths.get(layout["venv_dir"]) or {"exists": False}
    target_active = venv.get("type") == "link" and venv.get("link_target") == layout["target_venv"]
    marker = paths.get(f"{layout['target_venv']}/{layout['marker']}") or {}
    initialised = bool((paths.get(layout["server_version"]) or {}).get("exists"))
    build_venv = not marker.get("exists")
    adopt = venv.get("type") == "directory"
    previous = ""
    if venv.get("type") == "link" and not target_active:
        previous = str(venv.get("link_target") or "")
    elif adopt:
        previous = str(layout.get("adopted_venv") or "")

    absent: Sequence[str] = layout.get("absent") or []
    lines += [f"{path}: present, expected absent" for path in absent if _exists(paths, path)]
    restore_from, restore_in_place, restore_source = _restore(layout, paths)
    restore = bool(restore_from) and not initialised

    node_role = str((probed.get("node") or {}).get("role") or "")
    replica = role == "replica"
    promote = initialised and node_role == "replica" and role == "primary"
    role_conflict = initialised and (
        (replica and node_role not in ("", "replica"))
        or (role == "standalone" and node_role == "replica")
    )

    converge = bool(lines) or not running or restore or promote
    changed_paths = [path for path in expected if _differs(expected[path], paths.get(path))]
    if not running or promote:
        restart = "start"
    elif any(restart_for.get(path) == "definition" for path in changed_paths):
        restart = "definition"
    elif (
        any(restart_for.get(path) == "runtime" for path in changed_paths)
        or not target_active
        or not initialised
        or (build_venv and target_active)
    ):
        restart = "runtime"
    else:
        restart = "none"

    check_health = converge or not answered
    index = (server.get("indexes") or {}).get(layout.get("root_pypi", "root/pypi")) or {}
    root_pypi_in_place = bool(index.get("exists")) and not index.get("changes")
    return {
        "drift": lines + ([] if running else ["the service is not running"]),
        "converge": converge,
        "initialise": not initialised,
        "build_venv": build_venv,
        "switch": not target_active,
        "adopt": adopt,
        "previous_venv": previous,
        "restart": restart,
        "check_health": check_health,
        "check_password": (
            root_password_given
            and not replica
            and (initialised or restore)
            and (check_health or not server.get("login", False))
        ),
        "declare_root_pypi": not replica and (check_health or not root_pypi_in_place),
        "restore": restore,
        "restore_missing": restore and not restore_source,
        "restore_refused": bool(restore_from) and initialised and not restore_in_place,
        "promote": promote,
        "role_conflict": role_conflict,
        "node_role": node_role,
        "check_sync": replica and check_health,
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
    wanted = hashlib.sha1(str(restore.get("marker_text", source)).encode("utf-8")).hexdigest()
    in_place = bool(marker.get("exists")) and marker.get("sha1") == wanted
    return source, in_place, _exists(paths, str(restore.get("source")))


def _differs(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    return bool(drift({"path": expected}, {"path": actual or {"exists": False}}))


class FilterModule:
    """Ansible's entry point for the filters in this file."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"devpi_plan": devpi_plan}
