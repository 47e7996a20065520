# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_cache module: what a devpi-server's cache holds, and pruning it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: devpi_cache
short_description: Report what a devpi-server holds on disk, and prune its mirror caches by policy
version_added: 0.1.0
author: mcquack.devpi developers (@mcquack)
description:
  - Runs on the devpi host and reads the server-dir of a devpi-server 6.x (its C(+files) tree,
    without opening the database) to report, per index and per project, the cached files,
    their bytes, the number of versions, and when the oldest and the newest of them was cached;
    the size of devpi-web's search index (C(.indices)) and of the database (C(.sqlite)); and the
    free space of the volume that holds the server-dir. A scan of the directory tree, one
    C(stat) per file; nothing is downloaded or changed.
  - Which indexes are mirrors and which are stages (private indexes) is asked from devpi-server
    at O(url) (C(GET /), anonymous); if it does not answer, the report still comes, with the
    index types unknown and a warning.
  - With O(state=pruned), removes cached files of mirror indexes by O(policy), one version at a
    time, through devpi's own API (C(DELETE /USER/INDEX/PROJECT/VERSION), as C(devpi remove)
    does), never touching a stage. See the notes for what such a delete does and does not do.
  - "What oldest, newest and cached within mean: the modification time of a file in C(+files),
    which is when devpi-server wrote it, that is, when it cached the file from its upstream (or
    when the file was uploaded, or imported by C(devpi-import)). devpi sets no other time on
    it. It is not the upstream's upload time and not the last download: devpi records no
    downloads, and the access time is not used because backups (C(devpi-export)) read every
    file and many volumes do not keep it."
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcquack.devpi.server
  - mcquack.devpi.server.action_group
attributes:
  check_mode:
    support: full
    details: >-
      A report never changes anything, so check mode is its natural mode. With
      O(state=pruned), check mode returns the same RV(removed) list without removing anything.
  diff_mode:
    support: full
    details: With O(state=pruned), the cached versions of each project the prune touches, before and after.
  platform:
    platforms: posix
options:
  server_dir:
    description:
      - The devpi-server's server-dir (C(--serverdir)), readable by the user the module runs as.
      - Its C(.nodeinfo) names the server's uuid; devpi-server at O(url) must answer with the
        same uuid (C(GET /+status)) before the module uses its answer or sends it a password.
    type: path
    required: true
  state:
    description:
      - C(reported) reports and never changes anything.
      - C(pruned) removes, from the mirror indexes, the cached versions O(policy) does not keep,
        then reports what is left.
    type: str
    choices: [reported, pruned]
    default: reported
  indexes:
    description:
      - Indexes (C(USER/INDEX)) to report on, or with O(state=pruned) to prune. All of them by
        default; with O(state=pruned) all mirror indexes.
      - With O(state=pruned) each must be a mirror index; naming a stage fails before anything
        is removed.
    type: list
    elements: str
  policy:
    description:
      - What a prune keeps. Required with O(state=pruned); at least one rule must be set.
      - O(policy.keep_versions) and O(policy.keep_days) protect versions; without
        O(policy.max_size) every version neither of them protects is removed. With
        O(policy.max_size), unprotected versions are removed oldest cached first and only until
        the cached files of the mirror indexes in scope take at most O(policy.max_size); a cache
        already under the cap loses nothing.
      - A version is what one C(DELETE) removes, all its cached files at once (wheels and
        sdist); it counts as cached at the time of its most recently cached file.
    type: dict
    suboptions:
      keep_versions:
        description:
          - Keep the newest N cached versions of each project on each mirror index, newest by
            PEP 440 version order (pre-releases count as versions; versions PEP 440 cannot read
            come before all others). Versions that are not cached do not count.
        type: int
      keep_days:
        description: Keep every version of which a file was cached less than this many days ago.
        type: float
      max_size:
        description:
          - The cap for the cached files of the mirror indexes in scope, in bytes or with a unit
            (C(500M), C(20G), C(1T); units are powers of 1024).
          - Not a quota devpi enforces; the cache grows past it until the next prune.
        type: str
  top:
    description: How many projects RV(projects) lists, largest first. C(0) lists all.
    type: int
    default: 20
notes:
  - "What C(DELETE /USER/INDEX/PROJECT/VERSION) does on a mirror index of devpi-server 6.x
    (C(MirrorStage.del_versiondata), checked on 6.20.3): it deletes the cached files of that
    version from C(+files) and keeps everything else: the project's cached simple page still
    lists the version, its link still points at devpi, and the next download of the file fetches
    it from the upstream again and caches it anew. devpi's project and version listings do not
    change. devpi refuses such a delete from a non-volatile index unless it is forced, and
    devpi-init makes root/pypi non-volatile; the module forces it, as C(devpi remove --force)
    does, for mirror indexes only."
  - While the upstream (PyPI) cannot be reached, a pruned version is still listed but its
    download fails (HTTP 502), so an install that needs it fails until the upstream is back.
    Versions that were kept install as before. Keep what builds need during an outage with
    O(policy.keep_versions) and O(policy.keep_days).
  - "Replicas (checked on 6.20.3): the delete removes the file on the primary and changes no
    database entry; the file's record stays, so that the version can be fetched again. A
    replica therefore keeps its own copies of pruned files, and its disk is not freed. A replica
    that starts without them (a new replica, or one whose copies are gone) asks the primary for
    every mirror file devpi ever cached, and the primary fetches the pruned ones from the
    upstream and caches them again. devpi-server's C(--file-replication-skip-indexes mirror) on
    the replica stops that: it then copies a mirror file only when a client asks it for one.
    A prune runs on a primary or a standalone server; on a replica it is refused (a delete sent
    to a replica is passed on to its primary)."
  - RV(removed_bytes) adds up the sizes of the files that are gone afterwards. On a server-dir
    whose files are hard links (C(--storage sqlite:fsbackend=hash_hl), or C(devpi-import
    --hard-links)), the volume gains less when another link to the same content stays.
  - Files devpi cannot delete by version (a file name devpi reads no version from) are reported
    but never removed.
  - Pruning logs in with O(login_password) of O(login_user) (C(root), or the owner of the mirror
    indexes); the password is sent only to O(url), and only after the uuid check. Check mode
    needs no password; given one, it logs in to check it.
seealso:
  - module: mcquack.devpi.devpi_index
  - name: devpi-server's mirror deletes
    description: C(devpi remove) of a mirror project or version removes only its cached files.
    link: https://doc.devpi.net/
"""

EXAMPLES = r"""
- name: What does the server hold?
  mcquack.devpi.devpi_cache:
    server_dir: /var/lib/devpi/server-dir
  check_mode: true
  register: cache

- name: Print it as a short table, largest projects first
  ansible.builtin.debug:
    msg: "{{ cache.table }}"

- name: Keep the newest 3 versions of each project and everything cached within 30 days
  mcquack.devpi.devpi_cache:
    server_dir: /var/lib/devpi/server-dir
    state: pruned
    policy:
      keep_versions: 3
      keep_days: 30
    login_password: "{{ devpi_root_password }}"

- name: What would go to bring root/pypi under 50 GiB, oldest cached first, never the newest version
  mcquack.devpi.devpi_cache:
    server_dir: /var/lib/devpi/server-dir
    state: pruned
    indexes: [root/pypi]
    policy:
      keep_versions: 1
      max_size: 50G
    login_password: "{{ devpi_root_password }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
server_dir:
  description: The server-dir that was read.
  returned: always
  type: str
  sample: /var/lib/devpi/server-dir
indexes:
  description: Every index reported on (see O(indexes)), largest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The index, C(USER/INDEX).
      type: str
      sample: root/pypi
    type:
      description: C(mirror) or C(stage) as devpi-server reports it; null when it did not answer or does not know the index.
      type: str
      sample: mirror
    projects:
      description: Projects with files in the index.
      type: int
      sample: 12
    versions:
      description: Distinct versions with files in the index.
      type: int
      sample: 31
    files:
      description: Files in the index's part of C(+files).
      type: int
      sample: 57
    bytes:
      description: Their total size.
      type: int
      sample: 734003200
    oldest:
      description: When the oldest of them was cached (file modification time, UTC, ISO 8601); null without files.
      type: str
      sample: "2026-01-03T09:12:44Z"
    newest:
      description: When the newest of them was cached.
      type: str
      sample: "2026-12-01T17:40:02Z"
projects:
  description: The O(top) largest projects over all reported indexes, largest first.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: The index.
      type: str
      sample: root/pypi
    name:
      description: The project name, normalised (PEP 503).
      type: str
      sample: torch
    versions:
      description: Cached versions.
      type: int
      sample: 3
    files:
      description: Cached files.
      type: int
      sample: 3
    bytes:
      description: Their total size.
      type: int
      sample: 2400000000
    oldest:
      description: When its oldest file was cached.
      type: str
      sample: "2026-03-14T08:00:00Z"
    newest:
      description: When its newest file was cached.
      type: str
      sample: "2026-11-30T12:00:00Z"
totals:
  description: Files, bytes, versions, oldest and newest over all reported indexes, and the bytes of the mirror indexes among them.
  returned: always
  type: dict
  sample:
    files: 58
    bytes: 734100000
    versions: 32
    oldest: "2026-01-03T09:12:44Z"
    newest: "2026-12-01T17:40:02Z"
    mirror_bytes: 734003200
search_index_bytes:
  description: Size of devpi-web's search index, C(<server_dir>/.indices) (0 without devpi-web).
  returned: always
  type: int
  sample: 26214400
database_bytes:
  description: Size of devpi's database files (C(.sqlite) and any journal beside it).
  returned: always
  type: int
  sample: 12582912
volume:
  description: The filesystem that holds the server-dir.
  returned: always
  type: dict
  contains:
    path:
      description: The server-dir.
      type: str
    total_bytes:
      description: Its size.
      type: int
    free_bytes:
      description: What devpi-server may still write there (as C(df) shows it).
      type: int
    used_percent:
      description: Used, of what is usable, in percent.
      type: float
  sample:
    path: /var/lib/devpi/server-dir
    total_bytes: 250000000000
    free_bytes: 120000000000
    used_percent: 52.0
table:
  description: The report as lines of a short text table (indexes, the largest projects, the search index, database and free space).
  returned: always
  type: list
  elements: str
  sample:
    - "INDEX      TYPE    PROJECTS  VERSIONS  FILES     SIZE  OLDEST      NEWEST"
    - "root/pypi  mirror        12        31     57  700 MiB  2026-01-03  2026-12-01"
removed:
  description:
    - The cached versions the prune removed (in check mode, would remove), in the order it
      removes them, each with its files and why it went.
  returned: when O(state=pruned)
  type: list
  elements: dict
  contains:
    index:
      description: The mirror index.
      type: str
    project:
      description: The project (normalised).
      type: str
    version:
      description: The version, as devpi reads it from the file names.
      type: str
    files:
      description: The file names.
      type: list
      elements: str
    bytes:
      description: Their total size.
      type: int
    cached:
      description: When the newest of them was cached.
      type: str
    reason:
      description: Which rule removed it.
      type: str
  sample:
    - index: root/pypi
      project: numpy
      version: 1.26.0
      files: [numpy-1.26.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl]
      bytes: 18200000
      cached: "2026-02-01T10:00:00Z"
      reason: not among the newest 3 cached versions
removed_files:
  description: Number of files removed (would be, in check mode).
  returned: when O(state=pruned)
  type: int
  sample: 1
removed_bytes:
  description: Bytes of the files removed (would be, in check mode).
  returned: when O(state=pruned)
  type: int
  sample: 18200000
not_removed:
  description:
    - Versions the prune asked devpi to delete whose files are still there afterwards, with
      devpi's answer. Empty on success.
  returned: when O(state=pruned)
  type: list
  elements: dict
  sample: []
cache_bytes_before:
  description: Bytes of the cached files of the mirror indexes in scope before the prune.
  returned: when O(state=pruned)
  type: int
  sample: 734003200
cache_bytes_after:
  description: The same after the prune (in check mode, as it would be).
  returned: when O(state=pruned)
  type: int
  sample: 715803200
over_cap:
  description: The cache stays over O(policy.max_size) because the versions the policy keeps take more.
  returned: when O(state=pruned)
  type: bool
  sample: false
"""

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from ansible.module_utils.common.text.formatters import human_to_bytes  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import (  # noqa: E402
    DevpiClient,
    DevpiError,
    common_argument_spec,
    split_index_name,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_cache import (  # noqa: E402
    CachedFile,
    Policy,
    by_index,
    by_project,
    database_files,
    iso,
    plan_prune,
    scan,
    summarize,
    tree_size,
    version_key,
    versions_of,
    volume,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_module import run_module  # noqa: E402


def human(size: float) -> str:
    """A size for a person: 734003200 -> '700 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # not reached


def read_policy(params: dict[str, Any]) -> Policy:
    given = params.get("policy") or {}
    policy = Policy(
        keep_versions=given.get("keep_versions"),
        keep_days=given.get("keep_days"),
    )
    if given.get("max_size") is not None:
        text = str(given["max_size"]).strip()
        try:
            policy.max_bytes = int(text) if text.isdigit() else int(human_to_bytes(text))
        except (TypeError, ValueError):
            raise DevpiError(
                f"policy.max_size must be bytes or a size like 500M or 20G, got {text!r}"
            ) from None
    if policy.keep_versions is None and policy.keep_days is None and policy.max_bytes is None:
        raise DevpiError(
            "state=pruned needs a policy with at least one of keep_versions, keep_days, max_size"
        )
    if policy.keep_versions is not None and policy.keep_versions < 1:
        raise DevpiError(f"policy.keep_versions must be 1 or more, got {policy.keep_versions}")
    if policy.keep_days is not None and policy.keep_days < 0:
        raise DevpiError(f"policy.keep_days must be 0 or more, got {policy.keep_days}")
    return policy


def node_uuid(server_dir: str) -> str:
    """The uuid in server_dir/.nodeinfo; fails for a directory that is no devpi server-dir."""
    path = os.path.join(server_dir, ".nodeinfo")
    try:
        with open(path, encoding="utf-8") as f:
            uuid = json.load(f).get("uuid")
    except FileNotFoundError:
        raise DevpiError(
            f"{server_dir} is not a devpi-server server-dir (it has no .nodeinfo); check server_dir"
        ) from None
    except (OSError, ValueError) as e:
        raise DevpiError(f"cannot read {path}: {e}") from None
    if not isinstance(uuid, str) or not uuid:
        raise DevpiError(f"{path} names no uuid; is {server_dir} a devpi-server server-dir?")
    return uuid


def server_view(
    client: DevpiClient, server_dir: str, required: bool
) -> tuple[dict[str, dict[str, Any]] | None, str | None, list[str]]:
    """(index configs by USER/INDEX, role, warnings) from devpi-server at url, after checking
    it is the server of server_dir. Without ``required``, a server that does not answer gives
    (None, None, [a warning])."""
    expected = node_uuid(server_dir)
    try:
        _status, payload = client.request("GET", ("+status",))
    except DevpiError as e:
        if required:
            raise
        return None, None, [f"index types are unknown: {e}"]
    status = payload.get("result") or {}
    if status.get("uuid") != expected:
        raise DevpiError(
            f"devpi-server at {client.url} is not the server of {server_dir}: it answers with "
            f"uuid {status.get('uuid')!r}, the server-dir's .nodeinfo names {expected!r}; "
            "check url and server_dir"
        )
    configs: dict[str, dict[str, Any]] = {}
    for user, userconfig in client.list_users().items():
        for index, ixconfig in (userconfig.get("indexes") or {}).items():
            configs[f"{user}/{index}"] = dict(ixconfig)
    return configs, str(status.get("role") or "") or None, []


def stat_gone(files: list[CachedFile]) -> tuple[list[CachedFile], list[CachedFile]]:
    """(files no longer there, files still there)."""
    gone: list[CachedFile] = []
    left: list[CachedFile] = []
    for cached in files:
        (left if os.path.lexists(cached.path) else gone).append(cached)
    return gone, left


def table_lines(report: dict[str, Any]) -> list[str]:
    def day(stamp: str | None) -> str:
        return stamp[:10] if stamp else "-"

    rows = [["INDEX", "TYPE", "PROJECTS", "VERSIONS", "FILES", "SIZE", "OLDEST", "NEWEST"]]
    for ix in report["indexes"]:
        rows.append(
            [
                ix["name"],
                ix["type"] or "?",
                str(ix["projects"]),
                str(ix["versions"]),
                str(ix["files"]),
                human(ix["bytes"]),
                day(ix["oldest"]),
                day(ix["newest"]),
            ]
        )
    lines = _columns(rows, "llrrrrll")
    if report["projects"]:
        rows = [["PROJECT", "INDEX", "VERSIONS", "FILES", "SIZE", "OLDEST", "NEWEST"]]
        for p in report["projects"]:
            rows.append(
                [
                    p["name"],
                    p["index"],
                    str(p["versions"]),
                    str(p["files"]),
                    human(p["bytes"]),
                    day(p["oldest"]),
                    day(p["newest"]),
                ]
            )
        lines += ["", *_columns(rows, "llrrrll")]
    vol = report["volume"]
    lines += [
        "",
        f"search index (.indices): {human(report['search_index_bytes'])}; "
        f"database: {human(report['database_bytes'])}; "
        f"free on the server-dir's volume: {human(vol['free_bytes'])} of "
        f"{human(vol['total_bytes'])} ({vol['used_percent']}% used)",
    ]
    return lines


def _columns(rows: list[list[str]], align: str) -> list[str]:
    """Rows as aligned text: align has one letter per column, l(eft) or r(ight)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
    return [
        "  ".join(
            row[i].ljust(widths[i]) if how == "l" else row[i].rjust(widths[i])
            for i, how in enumerate(align)
        ).rstrip()
        for row in rows
    ]


def build_report(
    server_dir: str,
    files: list[CachedFile],
    indexes: list[str],
    configs: dict[str, dict[str, Any]] | None,
    top: int,
) -> dict[str, Any]:
    grouped = by_index(files)
    index_rows = []
    for name in indexes:
        own = grouped.get(name, [])
        config = (configs or {}).get(name)
        index_rows.append(
            {
                "name": name,
                "type": config.get("type", "stage") if config is not None else None,
                "projects": len({f.project for f in own}),
                **summarize(own),
            }
        )
    index_rows.sort(key=lambda row: (-row["bytes"], row["name"]))
    project_rows = [
        {"index": index, "name": project or "(no version in file name)", **summarize(own)}
        for (index, project), own in by_project(files).items()
    ]
    project_rows.sort(key=lambda row: (-row["bytes"], row["index"], row["name"]))
    if top:
        project_rows = project_rows[:top]
    mirror = {name for name, config in (configs or {}).items() if config.get("type") == "mirror"}
    totals = summarize(files)
    totals["mirror_bytes"] = sum(f.size for f in files if f.index in mirror)
    report: dict[str, Any] = {
        "server_dir": server_dir,
        "indexes": index_rows,
        "projects": project_rows,
        "totals": totals,
        "search_index_bytes": tree_size(os.path.join(server_dir, ".indices")),
        "database_bytes": sum(database_files(server_dir).values()),
        "volume": volume(server_dir),
    }
    report["table"] = table_lines(report)
    return report


def scope_indexes(params: dict[str, Any], configs: dict[str, dict[str, Any]] | None) -> list[str]:
    """The indexes to report on: those asked for, else every index on the server or on disk."""
    if params.get("indexes"):
        return list(dict.fromkeys(params["indexes"]))
    return sorted(configs or {})


def prune(
    client: DevpiClient,
    params: dict[str, Any],
    configs: dict[str, dict[str, Any]],
    files: list[CachedFile],
    check_mode: bool,
) -> dict[str, Any]:
    policy = read_policy(params)
    warnings: list[str] = []
    if params.get("indexes"):
        targets = list(dict.fromkeys(params["indexes"]))
        for name in targets:
            config = configs.get(name)
            if config is None:
                raise DevpiError(f"index {name} does not exist on {client.url}")
            if config.get("type") != "mirror":
                raise DevpiError(
                    f"index {name} is a {config.get('type', 'stage')}, not a mirror: its files "
                    "are uploads, which a prune never touches; name only mirror indexes"
                )
    else:
        targets = sorted(name for name, c in configs.items() if c.get("type") == "mirror")
    scope = set(targets)
    in_scope = [f for f in files if f.index in scope]
    plan = plan_prune(versions_of(in_scope), policy, time.time())

    removed: list[dict[str, Any]] = []
    not_removed: list[dict[str, Any]] = []
    for cv, reason in plan.remove:
        gone = cv.files
        if not check_mode:
            user, index = split_index_name(cv.index)
            # force: what `devpi remove --force` sends; devpi refuses a delete from a
            # non-volatile index without it, and devpi-init makes root/pypi non-volatile
            status, payload = client.request(
                "DELETE", (user, index, cv.project, cv.version), query="force=", allow=(404,)
            )
            gone, left = stat_gone(cv.files)
            if left:
                not_removed.append(
                    {
                        "index": cv.index,
                        "project": cv.project,
                        "version": cv.version,
                        "files": [f.filename for f in left],
                        "message": f"HTTP {status}: {payload.get('message', '')}".strip(),
                    }
                )
            if not gone:
                continue
        removed.append(
            {
                "index": cv.index,
                "project": cv.project,
                "version": cv.version,
                "files": sorted(f.filename for f in gone),
                "bytes": sum(f.size for f in gone),
                "cached": iso(cv.cached),
                "reason": reason,
            }
        )
    if not_removed:
        warnings.append(
            "devpi left the files of "
            + ", ".join(f"{n['index']} {n['project']} {n['version']}" for n in not_removed)
            + " in place (see not_removed)"
        )
    removed_bytes = sum(r["bytes"] for r in removed)
    if plan.over_cap:
        warnings.append(
            f"the mirror cache stays at {human(plan.size_after)}, over max_size "
            f"({human(policy.max_bytes or 0)}): the versions the policy keeps take more"
        )
    # the diff: the cached versions of each project the prune touched, before and after
    touched = {(r["index"], r["project"]) for r in removed}
    gone_versions = {(r["index"], r["project"], r["version"]) for r in removed}
    before: dict[str, list[str]] = {}
    after: dict[str, list[str]] = {}
    for cv in sorted(versions_of(in_scope), key=lambda cv: version_key(cv.version)):
        if (cv.index, cv.project) in touched:
            key = f"{cv.index}/{cv.project}"
            before.setdefault(key, []).append(cv.version)
            after.setdefault(key, [])
            if (cv.index, cv.project, cv.version) not in gone_versions:
                after[key].append(cv.version)
    return {
        "changed": bool(removed),
        "removed": removed,
        "removed_files": sum(len(r["files"]) for r in removed),
        "removed_bytes": removed_bytes,
        "not_removed": not_removed,
        "cache_bytes_before": plan.size_before,
        "cache_bytes_after": plan.size_before - removed_bytes,
        "over_cap": plan.over_cap,
        "warnings": warnings,
        "diff": {"before": before, "after": after},
    }


def run(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    server_dir = os.path.abspath(params["server_dir"])
    pruning = params["state"] == "pruned"
    for name in params.get("indexes") or []:
        split_index_name(name)
    if params["top"] < 0:
        raise DevpiError(f"top must be 0 or more, got {params['top']}")
    if pruning:
        read_policy(params)
        if params.get("login_password") is None and not check_mode:
            raise DevpiError(
                "state=pruned deletes through devpi's API and needs login_password (of "
                "login_user, root or the owner of the mirror indexes)"
            )
    if not os.path.isdir(server_dir):
        raise DevpiError(f"server_dir {server_dir} is not a directory")
    client = DevpiClient(
        params["url"],
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
        ca_path=params.get("ca_path"),
    )
    configs, role, warnings = server_view(client, server_dir, required=pruning)
    only = set(params["indexes"]) if params.get("indexes") else None
    found = scan(server_dir)
    result: dict[str, Any] = {"changed": False}
    if pruning:
        if configs is None:  # server_view raises instead when pruning; for the type checker
            raise DevpiError(f"devpi-server at {client.url} gave no index list")
        if role == "REPLICA":
            raise DevpiError(
                f"devpi-server at {client.url} is a replica: prune on its primary (a delete sent "
                "to a replica goes to the primary, and the replica keeps its own copies)"
            )
        if params.get("login_password") is not None:
            # after the uuid check; in check mode too, so that a preview catches a wrong password
            client.login(params["login_user"], params["login_password"])
        result = prune(client, params, configs, found.files, check_mode)
        warnings += result.pop("warnings")
        if result["changed"]:
            found = scan(server_dir)
    indexes = scope_indexes(params, configs)
    indexes += [n for n in found.indexes if n not in indexes and (only is None or n in only)]
    files = [f for f in found.files if only is None or f.index in only]
    report = build_report(server_dir, files, indexes, configs, params["top"])
    return {**result, **report, "warnings": warnings}


def main() -> None:
    argument_spec = common_argument_spec()
    argument_spec.update(
        server_dir={"type": "path", "required": True},
        state={"type": "str", "choices": ["reported", "pruned"], "default": "reported"},
        indexes={"type": "list", "elements": "str"},
        policy={
            "type": "dict",
            "options": {
                "keep_versions": {"type": "int"},
                "keep_days": {"type": "float"},
                "max_size": {"type": "str"},
            },
        },
        top={"type": "int", "default": 20},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "pruned", ("policy",))],
        supports_check_mode=True,
    )
    run_module(module, run)


if __name__ == "__main__":
    main()
