# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""What a devpi-server's cache holds, read from its server-dir, and which of it a policy prunes.

devpi-server 6.x (sqlite storage, files on the filesystem; ``devpi_server/filestore.py``,
``filestore_fs.py`` and ``model.py``) keeps every file of an index under

    <server-dir>/+files/<user>/<index>/+f/<hash[:3]>/<hash[3:16]>/<filename>

where the hash is the file's sha256 (from the upstream link's ``#sha256=`` fragment for a
mirror), and the rare mirror file whose link carries no hash under
``+files/<user>/<index>/+e/<dirname>/<basename>``. A file is written once, when devpi caches or
receives it, and devpi never sets its mtime afterwards, so the mtime is when it was cached.
Files being written end in ``-tmp`` and are skipped.

devpi records a mirror file's project and version in its database: the project of the simple
page it came from, the version as ``devpi_common.metadata.splitbasename`` reads it from the
file name. :func:`split_basename` is that function, so the version here is the one
``DELETE /<user>/<index>/<project>/<version>`` matches. The database itself is not read.

Python 3.9 compatible (the system python3 of macOS runs modules).
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from typing import Any

# devpi_common.metadata (devpi-common 4.x), as devpi-server 6.20 uses it.
_ALLOWED_ARCHIVE_EXTS = {
    ".deb",
    ".dmg",
    ".doc.zip",
    ".egg",
    ".exe",
    ".msi",
    ".rpm",
    ".tar",
    ".tar.bz2",
    ".tar.gz",
    ".tgz",
    ".whl",
    ".zip",
}
_RELEASEFILE_SUFFIX = re.compile(
    r"(\.deb|\.dmg|\.msi|\.zip|\.tar\.gz|\.tgz|\.tar\.bz2|"
    r"\.doc\.zip|"
    r"\.macosx-\d+.*|"
    r"\.linux-.*|"
    r"\-[^-]+?\.src\.rpm|"
    r"\-[^-]+?\.rpm|"
    r"\.win-amd68-py[23]\.\d\..*|"
    r"\.win32-py[23]\.\d\..*|"
    r"\.win.*\..*|"
    r"-(?:py|cp|ip|pp|jy)[23][\d\.]*.*\..*|"
    r")$",
    re.IGNORECASE,
)
_WHEEL_FILE = re.compile(
    r"""^(?P<namever>(?P<name>.+?)-(?P<ver>.*?))
    ((-(?P<build>\d.*?))?-(?P<pyver>.+?)-(?P<abi>.+?)-(?P<plat>.+?)
    \.whl|\.dist-info)$""",
    re.VERBOSE,
)
_PEP404_NAMEVERSION = re.compile(
    r"^(?P<name>[^.]+?)-(?P<ver>"
    r"(?:[1-9]\d*!)?"
    r"(?:0|[1-9]\d*)"
    r"(?:\.(?:0|[1-9]\d*))*"
    r"(?:(?:a|b|rc)(?:0|[1-9]\d*))?"
    r"(?:\.post(?:0|[1-9]\d*))?"
    r"(?:\.dev(?:0|[1-9]\d*))?"
    r"(?:\+(?:[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?"
    r")$"
)
_LEGACY_NAMEVERSION = re.compile(
    r"^(?P<name>[^.]+?)-(?P<ver>"
    r"(?:[1-9]\d*!)?"
    r"(?:0|[1-9]\d*)"
    r"(?:\.(?:0|[1-9]\d*))*"
    r"(?:(?:a|b|rc|alpha|beta)(?:0|[1-9]\d*))?"
    r"(?:\.post(?:0|[1-9]\d*))?"
    r"(?:\.dev(?:0|[1-9]\d*))?"
    r"(?:\-(?:[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?"
    r")$"
)
_DOCZIP = ".doc.zip"
_NAME_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
_TMP_SUFFIX = "-tmp"


def _splitext_archive(basename: str) -> tuple[str, str]:
    if basename.lower().endswith(_DOCZIP):
        return basename[: -len(_DOCZIP)], basename[-len(_DOCZIP) :]
    base, ext = posixpath.splitext(basename)
    if base.lower().endswith(".tar"):
        ext = base[-4:] + ext
        base = base[:-4]
    return base, ext


def split_basename(path: str) -> tuple[str, str, str]:
    """(name, version, suffix) of a release file name, exactly as devpi_common's
    ``splitbasename`` reads it; ValueError for a file type devpi does not know."""
    nameversion, ext = _splitext_archive(path)
    if ext == ".whl":
        wheel = _WHEEL_FILE.match(path)
        if wheel:
            info = wheel.groupdict()
            return info["name"], info["ver"], f"-{info['pyver']}-{info['abi']}-{info['plat']}.whl"
    if ext.lower() not in _ALLOWED_ARCHIVE_EXTS:
        raise ValueError(f"invalid archive type {ext!r} in: {path}")
    suffix = _RELEASEFILE_SUFFIX.search(path)
    if suffix:
        ext = suffix.group(1)
    nameversion = path[: -len(ext)] if ext else path
    if "-" not in nameversion:
        return nameversion, "", ext
    for pattern in (_PEP404_NAMEVERSION, _LEGACY_NAMEVERSION):
        match = pattern.match(nameversion)
        if match:
            return match.group("name"), match.group("ver"), ext
    name, version = nameversion.rsplit("-", 1)
    return name, version, ext


def normalize_name(name: str) -> str:
    """A project name as devpi and PEP 503 normalise it."""
    return _NAME_SEPARATORS.sub("-", name).lower()


# -- version order (PEP 440, as packaging orders versions) -----------------------------------

_PEP440 = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_\.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_\.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_INFINITY = float("inf")


def version_key(version: str) -> tuple[Any, ...]:
    """A sort key that orders versions as PEP 440 (and the ``packaging`` library) does;
    versions PEP 440 cannot read sort before all others, by their text."""
    match = _PEP440.match(version)
    if not match:
        return (0, version)
    release = [int(part) for part in match.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre: tuple[float, int]
    if match.group("pre_l"):
        pre = (_PRE_RANK[match.group("pre_l").lower()], int(match.group("pre_n") or 0))
    elif match.group("dev_l") and not match.group("post"):
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)
    post: float = -1
    if match.group("post"):
        post = int(match.group("post_n1") or match.group("post_n2") or 0)
    dev: float = int(match.group("dev_n") or 0) if match.group("dev_l") else _INFINITY
    local: tuple[Any, ...] = (0,)
    if match.group("local"):
        parts = re.split(r"[-_\.]", match.group("local").lower())
        local = (1, tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts))
    epoch = int(match.group("epoch") or 0)
    return (1, epoch, tuple(release), pre, post, dev, local)


# -- what is on disk -------------------------------------------------------------------------


@dataclass
class CachedFile:
    """One file under +files: where, what devpi calls it, how big, when it was cached."""

    index: str
    path: str
    filename: str
    project: str
    version: str | None
    size: int
    mtime: float


@dataclass
class Scan:
    """Every file under a server-dir's +files, and the indexes that have a directory there."""

    files: list[CachedFile] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _file(index: str, entry: os.DirEntry[str]) -> CachedFile | None:
    if entry.name.endswith(_TMP_SUFFIX):
        return None
    try:
        if not entry.is_file(follow_symlinks=False):
            return None
        stat = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # devpi removed it while we looked
        return None
    try:
        name, version, _suffix = split_basename(entry.name)
        project = normalize_name(name)
    except ValueError:
        project, version = "", None
    return CachedFile(
        index=index,
        path=entry.path,
        filename=entry.name,
        project=project,
        version=version or None,
        size=stat.st_size,
        mtime=stat.st_mtime,
    )


def scan(server_dir: str, only: set[str] | None = None) -> Scan:
    """The files of every index (or of the indexes in ``only``) under server_dir/+files."""
    result = Scan()
    files_dir = os.path.join(server_dir, "+files")
    for user in sorted(_entries(files_dir), key=lambda e: e.name):
        if not user.is_dir(follow_symlinks=False):
            continue
        for index in sorted(_entries(user.path), key=lambda e: e.name):
            name = f"{user.name}/{index.name}"
            if not index.is_dir(follow_symlinks=False) or (only is not None and name not in only):
                continue
            result.indexes.append(name)
            # +f/<a>/<b>/<file> (hashed) and +e/<dirname>/<file> (links without a hash)
            for top, depth in (("+f", 2), ("+e", 1)):
                dirs = [os.path.join(index.path, top)]
                for _level in range(depth):
                    dirs = [e.path for d in dirs for e in _entries(d) if e.is_dir()]
                for directory in dirs:
                    for entry in _entries(directory):
                        cached = _file(name, entry)
                        if cached is not None:
                            result.files.append(cached)
    return result


def tree_size(path: str) -> int:
    """Bytes of the regular files under path (0 if it does not exist)."""
    total = 0
    stack = [path]
    while stack:
        for entry in _entries(stack.pop()):
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def database_files(server_dir: str) -> dict[str, int]:
    """devpi's database files in server_dir and their sizes: ``.sqlite`` (6.x) or
    ``.sqlite_alchemy`` (7.x), with any ``-journal``/``-wal``/``-shm`` beside them."""
    found = {}
    for entry in _entries(server_dir):
        if entry.name.startswith(".sqlite") and entry.is_file(follow_symlinks=False):
            found[entry.name] = entry.stat(follow_symlinks=False).st_size
    return dict(sorted(found.items()))


def volume(path: str) -> dict[str, Any]:
    """Size and free space of the filesystem that holds path (free: what an unprivileged
    process may still write, as df shows it)."""
    stat = os.statvfs(path)
    total = stat.f_blocks * stat.f_frsize
    free = stat.f_bavail * stat.f_frsize
    used = total - stat.f_bfree * stat.f_frsize
    return {
        "path": path,
        "total_bytes": total,
        "free_bytes": free,
        "used_percent": round(100.0 * used / (used + free), 1) if used + free else 0.0,
    }


# -- summaries -------------------------------------------------------------------------------


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC, to the second."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def summarize(files: list[CachedFile]) -> dict[str, Any]:
    """Counts, bytes and the oldest and newest cache time of some files."""
    mtimes = [f.mtime for f in files]
    versions = {(f.index, f.project, f.version) for f in files if f.version is not None}
    return {
        "files": len(files),
        "bytes": sum(f.size for f in files),
        "versions": len(versions),
        "oldest": iso(min(mtimes)) if mtimes else None,
        "newest": iso(max(mtimes)) if mtimes else None,
    }


def by_index(files: list[CachedFile]) -> dict[str, list[CachedFile]]:
    grouped: dict[str, list[CachedFile]] = {}
    for cached in files:
        grouped.setdefault(cached.index, []).append(cached)
    return grouped


def by_project(files: list[CachedFile]) -> dict[tuple[str, str], list[CachedFile]]:
    grouped: dict[tuple[str, str], list[CachedFile]] = {}
    for cached in files:
        grouped.setdefault((cached.index, cached.project), []).append(cached)
    return grouped


# -- pruning ---------------------------------------------------------------------------------


@dataclass
class CachedVersion:
    """The cached files of one version of one project on one index: what one
    ``DELETE /<user>/<index>/<project>/<version>`` removes."""

    index: str
    project: str
    version: str
    files: list[CachedFile]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def cached(self) -> float:
        """When the version was last cached: the newest mtime of its files."""
        return max(f.mtime for f in self.files)


def versions_of(files: list[CachedFile]) -> list[CachedVersion]:
    """The cached versions the files make up; files without a version are left out (devpi
    cannot delete them by version)."""
    grouped: dict[tuple[str, str, str], list[CachedFile]] = {}
    for cached in files:
        if cached.version is not None and cached.project:
            grouped.setdefault((cached.index, cached.project, cached.version), []).append(cached)
    return [CachedVersion(i, p, v, fs) for (i, p, v), fs in sorted(grouped.items())]


@dataclass
class Policy:
    """What a prune keeps: the newest keep_versions versions of each project, anything cached
    within keep_days days; with max_bytes it removes only until the cache fits."""

    keep_versions: int | None = None
    keep_days: float | None = None
    max_bytes: int | None = None


@dataclass
class Plan:
    """What a prune removes, in order, and why."""

    remove: list[tuple[CachedVersion, str]]
    size_before: int
    size_after: int
    over_cap: bool


def plan_prune(versions: list[CachedVersion], policy: Policy, now: float) -> Plan:
    """Which cached versions the policy removes.

    A version is kept when it is among the ``keep_versions`` highest (PEP 440) cached versions
    of its project on its index, or when any of its files was cached less than ``keep_days``
    days ago. Without ``max_bytes`` every other version is removed. With it, the others are
    removed oldest cached first, only until the cache (the total of ``versions``) is at most
    ``max_bytes``; ``over_cap`` says the kept versions alone exceed it.
    """
    protected: dict[int, str] = {}
    if policy.keep_versions is not None:
        projects: dict[tuple[str, str], list[CachedVersion]] = {}
        for cv in versions:
            projects.setdefault((cv.index, cv.project), []).append(cv)
        for group in projects.values():
            group.sort(key=lambda cv: version_key(cv.version), reverse=True)
            for cv in group[: policy.keep_versions]:
                protected[id(cv)] = "newest"
    if policy.keep_days is not None:
        cutoff = now - policy.keep_days * 86400
        for cv in versions:
            if cv.cached >= cutoff:
                protected.setdefault(id(cv), "recent")

    candidates = [cv for cv in versions if id(cv) not in protected]
    candidates.sort(key=lambda cv: (cv.cached, cv.index, cv.project, version_key(cv.version)))
    size = sum(cv.size for cv in versions)
    before = size
    remove: list[tuple[CachedVersion, str]] = []
    for cv in candidates:
        if policy.max_bytes is not None:
            if size <= policy.max_bytes:
                break
            reason = f"the cache is over max_size ({size} > {policy.max_bytes} bytes)"
        elif policy.keep_versions is not None and policy.keep_days is not None:
            reason = (
                f"not among the newest {policy.keep_versions} cached versions and cached "
                f"more than {policy.keep_days:g} days ago"
            )
        elif policy.keep_versions is not None:
            reason = f"not among the newest {policy.keep_versions} cached versions"
        else:
            reason = f"cached more than {policy.keep_days:g} days ago"
        remove.append((cv, reason))
        size -= cv.size
    over_cap = policy.max_bytes is not None and size > policy.max_bytes
    return Plan(remove=remove, size_before=before, size_after=size, over_cap=over_cap)
