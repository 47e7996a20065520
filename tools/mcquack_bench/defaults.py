# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""defaults: a fresh host converged with the role's defaults; right after the converge a
`pip install requests` from this machine through root/pypi (retried every second only if it
fails), then devpi-server's RSS and CPU seconds 60 s after its first start. The same with
root/pypi's full project list (mirror_no_project_list: false)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mcquack_bench.context import Context
from mcquack_bench.hosts import Bench, Host
from mcquack_bench.results import ratio_pairs
from mcquack_bench.settings import RSS_AFTER, UNIT, BenchError, log

# The defaults measurement's variants: the role as shipped, and root/pypi with PyPI's whole
# project list (what devpi-init alone gives root/pypi, and the role's behaviour before
# devpi_root_pypi existed).
DEFAULTS_VARIANTS: dict[str, dict[str, Any] | None] = {
    "shipped": None,
    "full_list": {"devpi_root_pypi": {"mirror_no_project_list": False}},
}
FIRST_INSTALL = "requests"  # a package with dependencies
FIRST_INSTALL_LIMIT = 180.0  # seconds to keep retrying a failed first install


def first_install(bench: Bench, host: Host) -> tuple[bool, float, int]:
    """pip install FIRST_INSTALL through root/pypi from this machine, with no retries of pip's
    own; a failure is tried again every second. (first attempt succeeded, seconds from the
    start until an install succeeded, failed attempts)."""
    started, failures = time.monotonic(), 0
    while True:
        target = Path(tempfile.mkdtemp(prefix="first-install-", dir=bench.run_dir))
        proc = subprocess.run(
            [str(bench.pip), "--isolated", "install", "--quiet", "--no-cache-dir",
             "--disable-pip-version-check", "--retries", "0", "--target", str(target),
             "--index-url", f"{host.url}/root/pypi/+simple/",
             "--trusted-host", host.address, FIRST_INSTALL],
            capture_output=True, text=True, timeout=120, check=False, env=bench.direct_env,
        )  # fmt: skip
        shutil.rmtree(target, ignore_errors=True)
        if proc.returncode == 0:
            return failures == 0, time.monotonic() - started, failures
        failures += 1
        if failures == 1:
            log(f"first install failed: {proc.stderr.strip().splitlines()[-3:]}")
        if time.monotonic() - started > FIRST_INSTALL_LIMIT:
            raise BenchError(
                f"no install through {host.name} succeeded in {FIRST_INSTALL_LIMIT:.0f} s"
            )
        time.sleep(1.0)


def measure(context: Context) -> None:
    """A fresh host converged with the role's defaults, then at once a first install and, 60 s
    after devpi started, its RSS and CPU time; the same with root/pypi's full project list."""
    bench, results, runs = context.bench, context.results, context.runs
    bench.client_venv()
    for i in range(runs):
        order = list(DEFAULTS_VARIANTS) if i % 2 == 0 else list(reversed(DEFAULTS_VARIANTS))
        for variant in order:
            what = ("role defaults" if variant == "shipped"
                    else "root/pypi with the full project list")  # fmt: skip
            host = bench.up("defaults")
            try:
                bench.prepare(host)
                bench.converge(host, f"defaults-{variant}", DEFAULTS_VARIANTS[variant])
                first_ok, seconds, failures = first_install(bench, host)
                proc = bench.process_at(host, RSS_AFTER)
                journal = bench.sh(host, f"journalctl --unit {UNIT} --no-pager --output cat")
            finally:
                bench.down(host)
            results.add(f"defaults.first_install_s.{variant}", "s",
                        f"end of first converge to a successful first pip install of "
                        f"{FIRST_INSTALL}, {what}", seconds)  # fmt: skip
            results.add(f"defaults.first_install_failed.{variant}", "count",
                        f"failed first-install attempts before one succeeded, {what}",
                        float(failures))  # fmt: skip
            results.add(f"defaults.rss.{variant}", "MiB",
                        f"devpi-server RSS {RSS_AFTER:.0f} s after its first start, {what}",
                        proc["rss"])  # fmt: skip
            results.add(f"defaults.cpu.{variant}", "s",
                        f"CPU seconds in the first {RSS_AFTER:.0f} s after the first start, {what}",
                        proc["cpu"])  # fmt: skip
            found = re.search(r"indexing '(\S+)' mirror with (\d+) projects", journal)
            if found:
                results.facts["projects"] = f"{int(found.group(2)):,}".replace(",", " ")
                results.notes.append(f"defaults {variant}: devpi-web had devpi-server load "
                                     f"{results.facts['projects']} project names of the "
                                     f"{found.group(1)} mirror")  # fmt: skip
            log(f"defaults {variant} run {i + 1}/{runs}: first install "
                f"{'ok' if first_ok else f'failed {failures}x'} after {seconds:.2f} s, "
                f"RSS {proc['rss']:.1f} MiB, CPU {proc['cpu']:.1f} s")  # fmt: skip
    ratio_pairs(results, "defaults.rss.full_over_shipped", "RSS: full project list / defaults, pair by pair",
                "defaults.rss.full_list", "defaults.rss.shipped")  # fmt: skip
    ratio_pairs(results, "defaults.cpu.full_over_shipped", "CPU: full project list / defaults, pair by pair",
                "defaults.cpu.full_list", "defaults.cpu.shipped")  # fmt: skip
