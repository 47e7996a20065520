# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi.devpi_cache against two real devpi-servers: one plays PyPI (small wheels
uploaded to its stage pkgs/local), the other mirrors that stage as root/up and has a private
stage carol/private. No request leaves 127.0.0.1.

Some tests make files "old" by setting their modification time (os.utime), which is what the
module reads as the time devpi cached them."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_cache import (
    CachedFile,
    Policy,
    plan_prune,
    split_basename,
    version_key,
    versions_of,
)
from ansible_collections.mcquack.devpi.tests.unit.adhoc import COLLECTIONS_PATH
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.cachefill import (
    cache_through,
)
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    RunModule,
    devpi_server,
    devpi_server_venv,
    free_port,
)

# project -> versions uploaded upstream, and the random bytes in each of its wheels
RELEASES = {
    "alpha": (["1.0", "1.1", "2.0"], 20_000),
    "beta": (["1.9", "1.10", "2.0rc1"], 10_000),
    "gamma": (["1.0", "2.0"], 100_000),
}
MIRROR = "root/up"
# loopback only, whatever proxy the environment names
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PRIVATE = "carol/private"
DAY = 86400


@dataclass
class Servers:
    upstream: DevpiServer
    server: DevpiServer

    @property
    def server_dir(self) -> Path:
        assert self.server.server_dir is not None
        return self.server.server_dir

    def index_dir(self, index: str) -> Path:
        return self.server_dir / "+files" / index

    def files(self, index: str = MIRROR) -> dict[str, Path]:
        """The files of an index on disk, by name (none that devpi is still writing)."""
        return {
            p.name: p
            for p in self.index_dir(index).glob("+f/*/*/*")
            if p.is_file() and not p.name.endswith("-tmp")
        }

    def args(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.server.url, "server_dir": str(self.server_dir), **extra}

    def prune_args(self, **policy: Any) -> dict[str, Any]:
        return self.args(
            state="pruned", policy=policy, login_password=self.server.root_password, top=0
        )


def wheel(project: str, version: str) -> str:
    return f"{project}-{version}-py3-none-any.whl"


ALL_WHEELS = {wheel(p, v) for p, (versions, _size) in RELEASES.items() for v in versions}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    workdir = tmp_path_factory.mktemp("cache")
    with (
        devpi_server(workdir / "upstream", init_args=("--no-root-pypi",)) as upstream,
        devpi_server(workdir / "server", init_args=("--no-root-pypi",)) as server,
    ):
        upstream.root("PUT", "/pkgs", {"password": "pkgs-pw"})
        status, payload = upstream.request(
            "PUT", "/pkgs/local", {"type": "stage", "bases": []}, auth=("pkgs", "pkgs-pw")
        )
        assert status == 200, payload
        for project, (versions, size) in RELEASES.items():
            for version in versions:
                upstream.upload_wheel("pkgs/local", ("pkgs", "pkgs-pw"), project, version, size)
        server.root(
            "PUT",
            f"/{MIRROR}",
            {
                "type": "mirror",
                "mirror_url": f"{upstream.url}/pkgs/local/+simple/",
                "mirror_no_project_list": True,
                # as devpi-init makes root/pypi: devpi refuses unforced deletes from it
                "volatile": False,
            },
        )
        server.root("PUT", "/carol", {"password": "carol-pw"})
        status, payload = server.request(
            "PUT", f"/{PRIVATE}", {"type": "stage", "bases": [MIRROR]}, auth=("carol", "carol-pw")
        )
        assert status == 200, payload
        # private uploads: one of a project the mirror also has, at a higher version
        server.upload_wheel(PRIVATE, ("carol", "carol-pw"), "alpha", "9.0", 5_000)
        server.upload_wheel(PRIVATE, ("carol", "carol-pw"), "carolpkg", "1.0", 5_000)
        yield Servers(upstream=upstream, server=server)


def cache_everything(servers: Servers, ages: dict[str, float] | None = None) -> dict[str, Path]:
    """Fetch every release through the mirror (again, where a prune removed it), wait until
    devpi has all of them on disk, then give each file its age in days (0 unless in ages)."""
    cache_through(f"{servers.server.url}/{MIRROR}", sorted(RELEASES))
    deadline = time.monotonic() + 20
    while set(servers.files()) != ALL_WHEELS or list(servers.index_dir(MIRROR).rglob("*-tmp")):
        assert time.monotonic() < deadline, sorted(servers.files())
        time.sleep(0.1)
    now = time.time()
    files = servers.files()
    for name, path in files.items():
        stamp = now - (ages or {}).get(name, 0) * DAY
        os.utime(path, (stamp, stamp))
    return files


def private_files(servers: Servers) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in servers.files(PRIVATE).items()}


def iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def removed_names(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["project"], r["version"]) for r in result["removed"]]


def upstream_sha256(servers: Servers, filename: str) -> str:
    status, payload = servers.upstream.request("GET", "/pkgs/local/alpha")
    assert status == 200, payload
    for verdata in payload["result"].values():
        for link in verdata.get("+links", []):
            if link["href"].endswith("/" + filename):
                digest: str = link["hashes"]["sha256"]
                return digest
    raise AssertionError(f"{filename} is not on the upstream")


def pip_download(index_url: str, requirement: str, dest: Path) -> None:
    """pip download through the mirror, as a person installing would; by hand (simple page,
    then the file, which is what pip does) where no pip is installed."""
    for python in (sys.executable, shutil.which("python3")):
        if python is None:
            continue
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            done = subprocess.run(
                [
                    python,
                    "-m",
                    "pip",
                    "download",
                    "--isolated",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--index-url",
                    index_url,
                    "--trusted-host",
                    "127.0.0.1",
                    "-d",
                    str(dest),
                    requirement,
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return
    cache_through(index_url.removesuffix("/+simple/"), [requirement.split("==")[0]])


# --- the parts devpi's own code decides, checked against devpi's own code ------------------


def test_file_names_are_read_as_devpi_reads_them() -> None:
    names = [
        "alpha-1.0-py3-none-any.whl",
        "Django-4.2.7.tar.gz",
        "zope.interface-6.1-cp311-cp311-manylinux_2_17_x86_64.whl",
        "numpy-1.26.0-cp311-cp311-macosx_11_0_arm64.whl",
        "pkg-1.0-1-py3-none-any.whl",
        "foo_bar-2.0.post1.zip",
        "thing-1.0.dev3.tar.bz2",
        "oldstyle-0.1-py2.7.egg",
        "legacy-1.0-beta2.tgz",
        "weird-1.0+local.7.tar.gz",
        "setuptools-0.6c11-py2.7.egg",
        "noversion.zip",
        "pywin32-306.win-amd64-py3.11.exe",
        "pkg-1.0.doc.zip",
    ]
    python = devpi_server_venv() / "bin" / "python"
    code = (
        "import json, sys\n"
        "from devpi_common.metadata import splitbasename\n"
        "print(json.dumps([list(splitbasename(n)) for n in json.loads(sys.argv[1])]))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, json.dumps(names)], capture_output=True, text=True, check=True
    )
    assert [list(split_basename(n)) for n in names] == json.loads(done.stdout)
    with pytest.raises(ValueError):
        split_basename("README.txt")


def test_versions_are_ordered_as_packaging_orders_them() -> None:
    versions = [
        "1.0",
        "1.0.0",
        "1.10",
        "1.9",
        "2.0rc1",
        "2.0",
        "2.0.post1",
        "2.0.dev3",
        "2.0a1",
        "2.0b2",
        "2.0a1.dev1",
        "1!0.1",
        "1.0+local.1",
        "1.0+local.a",
        "1.0+2",
        "1.0.post1.dev2",
        "0.9-1",
        "v3.0",
        "3.0.RC2",
    ]
    python = devpi_server_venv() / "bin" / "python"
    code = (
        "import json, sys\n"
        "from packaging.version import Version\n"
        "print(json.dumps(sorted(json.loads(sys.argv[1]), key=Version)))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, json.dumps(versions)], capture_output=True, text=True, check=True
    )
    expected = json.loads(done.stdout)
    ours = sorted(versions, key=version_key)
    # equal versions (1.0 and 1.0.0) may come in either order
    assert [version_key(v) for v in ours] == [version_key(v) for v in expected]
    assert ours.index("1.10") > ours.index("1.9")
    assert sorted(["not-a-version", "0.1"], key=version_key) == ["not-a-version", "0.1"]


# --- the policy, on made-up files (what the prunes below do against devpi) --------------------

NOW = 1_800_000_000.0


def made_up(*releases: tuple[str, str, float, int]) -> list[CachedFile]:
    """(project, version, age in days, size) as files of the mirror index root/pypi."""
    return [
        CachedFile(
            index="root/pypi",
            path=f"/nowhere/{project}-{version}-py3-none-any.whl",
            filename=f"{project}-{version}-py3-none-any.whl",
            project=project,
            version=version,
            size=size,
            mtime=NOW - age * DAY,
        )
        for project, version, age, size in releases
    ]


def planned(files: list[CachedFile], policy: Policy) -> list[tuple[str, str]]:
    return [
        (cv.project, cv.version)
        for cv, _reason in plan_prune(versions_of(files), policy, NOW).remove
    ]


def test_a_version_is_kept_when_any_rule_keeps_it() -> None:
    files = made_up(
        ("a", "1.0", 90, 10),
        ("a", "1.1", 5, 10),  # not the newest, but recent
        ("a", "2.0", 60, 10),  # the newest, but old
        ("b", "0.1", 70, 10),
    )
    assert planned(files, Policy(keep_versions=1, keep_days=10)) == [("a", "1.0")]
    assert planned(files, Policy(keep_versions=1)) == [("a", "1.0"), ("a", "1.1")]
    assert planned(files, Policy(keep_days=10)) == [("a", "1.0"), ("b", "0.1"), ("a", "2.0")]


def test_a_version_goes_whole_and_counts_as_cached_when_its_newest_file_was() -> None:
    files = made_up(("a", "1.0", 90, 10), ("a", "2.0", 1, 10))
    files += made_up(("a", "1.0", 3, 10))  # a second file of 1.0 (say, its sdist), cached lately
    files[-1].filename = "a-1.0.tar.gz"
    (version,) = [cv for cv in versions_of(files) if cv.version == "1.0"]
    assert len(version.files) == 2 and version.size == 20
    assert planned(files, Policy(keep_days=10)) == []
    assert planned(files, Policy(keep_versions=1)) == [("a", "1.0")]


def test_a_cap_removes_oldest_first_only_until_the_cache_fits() -> None:
    files = made_up(("a", "1.0", 50, 100), ("b", "1.0", 40, 100), ("a", "2.0", 30, 100))
    assert planned(files, Policy(max_bytes=300)) == []
    assert planned(files, Policy(max_bytes=250)) == [("a", "1.0")]
    assert planned(files, Policy(max_bytes=150)) == [("a", "1.0"), ("b", "1.0")]
    plan = plan_prune(versions_of(files), Policy(max_bytes=50, keep_versions=1), NOW)
    assert [(cv.project, cv.version) for cv, _reason in plan.remove] == [("a", "1.0")]
    assert (plan.size_before, plan.size_after, plan.over_cap) == (300, 200, True)


# --- the report -------------------------------------------------------------------------------


def test_report_per_index_and_project(servers: Servers, run_module: RunModule) -> None:
    files = cache_everything(servers, ages={wheel("alpha", "1.0"): 100, wheel("beta", "1.9"): 50})
    # devpi-web is not installed in these tests: a file where it keeps its search index
    # stands in for one, to check it is counted
    indices = servers.server_dir / ".indices" / "whoosh"
    indices.mkdir(parents=True, exist_ok=True)
    (indices / "segment.seg").write_bytes(b"x" * 1234)

    report = run_module("devpi_cache", servers.args(top=0), check=True)
    result = report.result
    assert not report.failed and not report.changed, result
    assert not report.warnings, report.warnings

    by_name = {ix["name"]: ix for ix in result["indexes"]}
    assert result["indexes"][0]["name"] == MIRROR  # largest first
    mirror = by_name[MIRROR]
    mtimes = [p.stat().st_mtime for p in files.values()]
    assert mirror == {
        "name": MIRROR,
        "type": "mirror",
        "projects": 3,
        "versions": 8,
        "files": 8,
        "bytes": sum(p.stat().st_size for p in files.values()),
        "oldest": iso(min(mtimes)),
        "newest": iso(max(mtimes)),
    }
    assert mirror["oldest"] == iso(files[wheel("alpha", "1.0")].stat().st_mtime)
    private = by_name[PRIVATE]
    assert (private["type"], private["files"], private["projects"]) == ("stage", 2, 2)
    assert set(by_name) == {MIRROR, PRIVATE}  # this server's indexes, not the upstream's

    projects = result["projects"]
    assert projects[0]["name"] == "gamma"
    assert [p["bytes"] for p in projects] == sorted((p["bytes"] for p in projects), reverse=True)
    alpha = next(p for p in projects if (p["index"], p["name"]) == (MIRROR, "alpha"))
    alpha_files = [files[wheel("alpha", v)] for v in RELEASES["alpha"][0]]
    assert alpha["bytes"] == sum(p.stat().st_size for p in alpha_files)
    assert (alpha["versions"], alpha["files"]) == (3, 3)
    assert alpha["oldest"] == iso(files[wheel("alpha", "1.0")].stat().st_mtime)
    assert any((p["index"], p["name"]) == (PRIVATE, "alpha") for p in projects)

    assert result["totals"]["files"] == 10
    assert result["totals"]["mirror_bytes"] == mirror["bytes"]
    assert result["search_index_bytes"] == 1234
    assert result["database_bytes"] >= (servers.server_dir / ".sqlite").stat().st_size > 0
    vfs = os.statvfs(servers.server_dir)
    assert abs(result["volume"]["free_bytes"] - vfs.f_bavail * vfs.f_frsize) < 256 * 2**20
    table = result["table"]
    assert table[0].split() == [
        "INDEX",
        "TYPE",
        "PROJECTS",
        "VERSIONS",
        "FILES",
        "SIZE",
        "OLDEST",
        "NEWEST",
    ]
    assert table[1].split()[:5] == [MIRROR, "mirror", "3", "8", "8"]
    assert any(line.split()[:2] == ["gamma", MIRROR] for line in table)
    assert "search index (.indices): 1.2 KiB" in table[-1]

    top = run_module("devpi_cache", servers.args(top=2, indexes=[PRIVATE]), check=True).result
    assert [ix["name"] for ix in top["indexes"]] == [PRIVATE]
    assert {(p["index"], p["name"]) for p in top["projects"]} == {
        (PRIVATE, "alpha"),
        (PRIVATE, "carolpkg"),
    }
    assert top["projects"][0]["bytes"] >= top["projects"][1]["bytes"]
    assert top["totals"]["files"] == 2


def test_report_when_devpi_does_not_answer_and_refusal_of_another_server(
    servers: Servers, run_module: RunModule
) -> None:
    cache_everything(servers)
    down = run_module(
        "devpi_cache", servers.args(url=f"http://127.0.0.1:{free_port()}"), check=True
    )
    assert not down.failed, down.result
    assert "index types are unknown" in json.dumps(down.warnings), down.warnings
    mirror = next(ix for ix in down.result["indexes"] if ix["name"] == MIRROR)
    assert (mirror["type"], mirror["files"]) == (None, 8)

    # the upstream is a devpi too, but not the one of this server-dir: no report from it, and
    # the password is never sent to it
    logins_before = servers.upstream.log.read_text().count("POST /+login")
    other = run_module(
        "devpi_cache",
        {**servers.prune_args(keep_versions=1), "url": servers.upstream.url},
    )
    assert other.failed
    assert "is not the server of" in other.msg, other.msg
    assert servers.upstream.log.read_text().count("POST /+login") == logins_before
    assert set(servers.files()) == ALL_WHEELS
    assert servers.server.root_password not in other.stdout + other.stderr


# --- pruning ----------------------------------------------------------------------------------


def test_keep_newest_versions_prunes_through_devpi_and_a_pruned_version_comes_back(
    servers: Servers, run_module: RunModule, tmp_path: Path
) -> None:
    files = cache_everything(servers)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    private_before = private_files(servers)
    status, listing_before = servers.server.request("GET", f"/{MIRROR}/alpha")
    assert status == 200
    expected = [
        ("alpha", "1.0"),
        ("alpha", "1.1"),
        ("beta", "1.9"),
        ("beta", "1.10"),
        ("gamma", "1.0"),
    ]

    preview = run_module("devpi_cache", servers.prune_args(keep_versions=1), check=True, diff=True)
    assert preview.changed and not preview.failed, preview.result
    assert sorted(removed_names(preview.result)) == sorted(expected)
    assert preview.result["removed_bytes"] == sum(sizes[wheel(p, v)] for p, v in expected)
    assert preview.result["diff"]["before"]["root/up/beta"] == ["1.9", "1.10", "2.0rc1"]
    assert preview.result["diff"]["after"] == {
        "root/up/alpha": ["2.0"],
        "root/up/beta": ["2.0rc1"],
        "root/up/gamma": ["2.0"],
    }
    assert set(servers.files()) == ALL_WHEELS  # check mode removed nothing

    pruned = run_module("devpi_cache", servers.prune_args(keep_versions=1), diff=True)
    assert pruned.changed and not pruned.failed, pruned.result
    assert removed_names(pruned.result) == removed_names(preview.result)
    assert pruned.result["removed_bytes"] == preview.result["removed_bytes"]
    assert pruned.result["removed_files"] == 5
    assert pruned.result["not_removed"] == []
    assert all(
        r["reason"] == "not among the newest 1 cached versions" for r in pruned.result["removed"]
    )
    assert set(servers.files()) == {
        wheel("alpha", "2.0"),
        wheel("beta", "2.0rc1"),
        wheel("gamma", "2.0"),
    }
    after = next(ix for ix in pruned.result["indexes"] if ix["name"] == MIRROR)
    assert after["files"] == 3
    assert pruned.result["cache_bytes_after"] == after["bytes"]
    assert servers.server.root_password not in pruned.stdout + pruned.stderr
    # the private stage holds a higher alpha (9.0): it is neither pruned nor counted as the
    # mirror's newest alpha
    assert private_files(servers) == private_before

    # devpi's listing still offers every version (DELETE of a mirror version keeps the links)
    status, listing_after = servers.server.request("GET", f"/{MIRROR}/alpha")
    assert status == 200
    assert (
        sorted(listing_after["result"]) == sorted(listing_before["result"]) == ["1.0", "1.1", "2.0"]
    )

    again = run_module("devpi_cache", servers.prune_args(keep_versions=1))
    assert not again.changed and not again.failed, again.result
    assert again.result["removed"] == []

    # a pruned version installs again: the mirror fetches it from its upstream
    pip_download(f"{servers.server.url}/{MIRROR}/+simple/", "alpha==1.0", tmp_path)
    deadline = time.monotonic() + 20
    while wheel("alpha", "1.0") not in servers.files():
        assert time.monotonic() < deadline, "alpha 1.0 did not come back into the cache"
        time.sleep(0.1)
    back = servers.files()[wheel("alpha", "1.0")]
    assert hashlib.sha256(back.read_bytes()).hexdigest() == upstream_sha256(
        servers, wheel("alpha", "1.0")
    )


def test_keep_days_removes_what_was_cached_longer_ago(
    servers: Servers, run_module: RunModule
) -> None:
    # made old here: alpha 1.0 40 days, beta 1.9 45 days, gamma 1.0 31 days; the rest 1 day
    old = {wheel("alpha", "1.0"): 40, wheel("beta", "1.9"): 45, wheel("gamma", "1.0"): 31}
    cache_everything(servers, ages={**dict.fromkeys(ALL_WHEELS, 1), **old})
    private_before = private_files(servers)

    preview = run_module("devpi_cache", servers.prune_args(keep_days=30), check=True)
    assert preview.changed, preview.result
    # oldest cached first
    assert removed_names(preview.result) == [("beta", "1.9"), ("alpha", "1.0"), ("gamma", "1.0")]
    assert set(servers.files()) == ALL_WHEELS

    pruned = run_module("devpi_cache", servers.prune_args(keep_days=30))
    assert removed_names(pruned.result) == removed_names(preview.result)
    assert pruned.result["removed"][0]["reason"] == "cached more than 30 days ago"
    assert set(servers.files()) == ALL_WHEELS - set(old)
    assert private_files(servers) == private_before

    again = run_module("devpi_cache", servers.prune_args(keep_days=30))
    assert not again.changed, again.result


def test_size_cap_removes_oldest_first_and_stops_under_it(
    servers: Servers, run_module: RunModule
) -> None:
    # every version a different age, so "oldest cached first" has one answer
    order = [
        wheel("gamma", "1.0"),
        wheel("alpha", "1.0"),
        wheel("beta", "1.9"),
        wheel("alpha", "1.1"),
        wheel("beta", "1.10"),
        wheel("gamma", "2.0"),
        wheel("alpha", "2.0"),
        wheel("beta", "2.0rc1"),
    ]
    files = cache_everything(servers, ages={name: 80 - 10 * i for i, name in enumerate(order)})
    sizes = {name: path.stat().st_size for name, path in files.items()}
    total = sum(sizes.values())
    private_before = private_files(servers)

    roomy = run_module("devpi_cache", servers.prune_args(max_size=str(total)))
    assert not roomy.changed and roomy.result["removed"] == [], roomy.result

    # room for all but gamma 1.0 and half of alpha 1.0: those two go, nothing else
    cap = total - sizes[order[0]] - sizes[order[1]] // 2
    capped = run_module("devpi_cache", servers.prune_args(max_size=str(cap)))
    assert capped.changed, capped.result
    assert removed_names(capped.result) == [("gamma", "1.0"), ("alpha", "1.0")]
    assert capped.result["cache_bytes_after"] <= cap
    assert capped.result["over_cap"] is False
    assert set(servers.files()) == ALL_WHEELS - set(order[:2])
    assert not run_module("devpi_cache", servers.prune_args(max_size=str(cap))).changed

    # a cap the kept versions alone exceed: everything else goes, and a warning says so
    cache_everything(servers, ages={name: 80 - 10 * i for i, name in enumerate(order)})
    tight = run_module("devpi_cache", servers.prune_args(max_size="1K", keep_versions=1))
    assert tight.result["over_cap"] is True
    assert "over max_size" in json.dumps(tight.warnings), tight.warnings
    assert set(servers.files()) == {
        wheel("alpha", "2.0"),
        wheel("beta", "2.0rc1"),
        wheel("gamma", "2.0"),
    }
    assert private_files(servers) == private_before


def test_a_stage_is_never_pruned(servers: Servers, run_module: RunModule) -> None:
    cache_everything(servers)
    private_before = private_files(servers)
    refused = run_module(
        "devpi_cache", {**servers.prune_args(max_size="0"), "indexes": [PRIVATE, MIRROR]}
    )
    assert refused.failed
    assert f"index {PRIVATE} is a stage, not a mirror" in refused.msg, refused.msg
    assert private_files(servers) == private_before
    assert set(servers.files()) == ALL_WHEELS

    everything = run_module("devpi_cache", servers.prune_args(max_size="0"))
    assert everything.changed and not everything.failed, everything.result
    assert {r["index"] for r in everything.result["removed"]} == {MIRROR}
    assert servers.files() == {}
    assert private_files(servers) == private_before


def test_pruning_needs_the_right_password_and_a_policy(
    servers: Servers, run_module: RunModule
) -> None:
    cache_everything(servers)
    no_password = servers.prune_args(keep_versions=1)
    del no_password["login_password"]
    result = run_module("devpi_cache", no_password)
    assert result.failed and "needs login_password" in result.msg, result.result
    preview = run_module("devpi_cache", no_password, check=True)  # a preview needs none
    assert preview.changed and len(preview.result["removed"]) == 5, preview.result
    wrong_preview = run_module(
        "devpi_cache", {**servers.prune_args(keep_versions=1), "login_password": "nope"}, check=True
    )
    assert wrong_preview.failed and "login as 'root'" in wrong_preview.msg, wrong_preview.result

    wrong = run_module(
        "devpi_cache", {**servers.prune_args(keep_versions=1), "login_password": "nope"}
    )
    assert wrong.failed and "login as 'root'" in wrong.msg, wrong.result
    assert "nope" not in wrong.stdout + wrong.stderr

    empty = run_module("devpi_cache", servers.prune_args())
    assert empty.failed and "at least one of" in empty.msg, empty.result
    bad = run_module("devpi_cache", servers.prune_args(max_size="lots"))
    assert bad.failed and "policy.max_size" in bad.msg, bad.result
    assert set(servers.files()) == ALL_WHEELS


# --- the playbook -----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[4]


def run_cache_playbook(servers: Servers, tmp_path: Path, *options: str) -> str:
    """ansible-playbook playbooks/devpi_cache.yml as the operator runs it, against this machine
    as the one host of the group devpi, with the role's variables pointing at the test server."""
    port = int(servers.server.url.rsplit(":", 1)[1])
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "devpi_server_dir": str(servers.server_dir),
        "devpi_listen_port": port,
        "devpi_service_user": getpass.getuser(),
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps({"all": {"children": {"devpi": {"hosts": {"localhost": host}}}}})
    )
    sibling = Path(sys.executable).parent / "ansible-playbook"
    command = str(sibling) if sibling.exists() else "ansible-playbook"
    done = subprocess.run(
        [command, "-i", str(inventory), str(ROOT / "playbooks" / "devpi_cache.yml"), *options],
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
            "ANSIBLE_NOCOLOR": "1",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_playbook_prints_the_table_and_previews_a_prune(
    servers: Servers, tmp_path: Path
) -> None:
    # ansible-test runs the module tests where only ansible.module_utils can be imported: no
    # ansible-playbook there (pytest runs it, as tools/test and mise run test-unit do)
    pytest.importorskip("ansible.cli", reason="ansible-playbook cannot run here")
    cache_everything(servers)
    report = run_cache_playbook(servers, tmp_path)
    lines = [line.strip() for line in report.splitlines()]
    header = next(i for i, line in enumerate(lines) if line.startswith("INDEX"))
    assert lines[header + 1].split()[:5] == [MIRROR, "mirror", "3", "8", "8"], report
    assert any(line.split()[:2] == ["gamma", MIRROR] for line in lines), report
    assert "changed=0" in report

    policy = {"devpi_cache_policy": {"keep_versions": 1}}
    secret = {"devpi_root_password": servers.server.root_password}
    preview = run_cache_playbook(
        servers, tmp_path, "-e", json.dumps({**policy, **secret}), "--check", "--diff"
    )
    assert "Would remove 5 cached versions, 5 files" in preview, preview
    assert "root/up/alpha:" in preview and "-    - '1.1'" in preview, preview
    assert servers.server.root_password not in preview
    assert set(servers.files()) == ALL_WHEELS


def test_during_an_upstream_outage_a_pruned_version_fails_and_a_kept_one_installs(
    tmp_path_factory: pytest.TempPathFactory, run_module: RunModule
) -> None:
    """What pruning costs while PyPI cannot be reached: devpi still lists a pruned version but
    cannot serve its file (HTTP 502); what the policy kept installs as before. The prune itself
    needs no upstream."""
    workdir = tmp_path_factory.mktemp("outage")
    with devpi_server(workdir / "server", init_args=("--no-root-pypi",)) as server:
        with devpi_server(workdir / "upstream", init_args=("--no-root-pypi",)) as upstream:
            upstream.root("PUT", "/pkgs", {"password": "pkgs-pw"})
            status, payload = upstream.request(
                "PUT", "/pkgs/local", {"type": "stage", "bases": []}, auth=("pkgs", "pkgs-pw")
            )
            assert status == 200, payload
            for version in ("1.0", "2.0"):
                upstream.upload_wheel("pkgs/local", ("pkgs", "pkgs-pw"), "alpha", version)
            server.root(
                "PUT",
                f"/{MIRROR}",
                {"type": "mirror", "mirror_url": f"{upstream.url}/pkgs/local/+simple/"},
            )
            cache_through(f"{server.url}/{MIRROR}", ["alpha"])
            assert server.server_dir is not None
            deadline = time.monotonic() + 20
            while len(list((server.server_dir / "+files" / MIRROR).glob("+f/*/*/*.whl"))) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        # the upstream is gone from here on
        args = {
            "url": server.url,
            "server_dir": str(server.server_dir),
            "state": "pruned",
            "policy": {"keep_versions": 1},
            "login_password": server.root_password,
        }
        pruned = run_module("devpi_cache", args)
        assert removed_names(pruned.result) == [("alpha", "1.0")], pruned.result

        page = f"{server.url}/{MIRROR}/+simple/alpha/"
        with _NO_PROXY.open(page, timeout=30) as response:
            html = response.read().decode()
        links = {
            href.split("#")[0].rsplit("/", 1)[1]: urllib.parse.urljoin(page, href.split("#")[0])
            for href in re.findall(r'href="([^"]+)"', html)
            if "/+f/" in href
        }
        assert set(links) == {wheel("alpha", "1.0"), wheel("alpha", "2.0")}  # still listed
        with _NO_PROXY.open(links[wheel("alpha", "2.0")], timeout=30) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as failed:
            _NO_PROXY.open(links[wheel("alpha", "1.0")], timeout=30)
        assert failed.value.code == 502
