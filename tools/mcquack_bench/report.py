# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""docs/benchmarks.md, rendered from tools/benchmarks.md.j2, and the facts about this machine
and checkout that it states."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import jinja2

from mcquack_bench.defaults import FIRST_INSTALL
from mcquack_bench.plays import profile_markdown
from mcquack_bench.results import Results, fmt, markdown_table
from mcquack_bench.settings import DOCS_TEMPLATE, ROOT
from mcquack_bench.targets import targets, verdict


def read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, str]:
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.MULTILINE)
    cpu = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.MULTILINE)
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', read("/etc/os-release"), re.MULTILINE)
    debian = read("/etc/debian_version").strip()
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{int(meminfo.group(1)) / 1024 / 1024:.1f} GiB" if meminfo else "unknown",
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "os": f"{pretty.group(1) if pretty else 'unknown'}"
        + (f", debian_version {debian}" if debian else ""),
        "cpu": cpu.group(1).strip() if cpu else "unknown",
    }


def loadavg() -> str:
    return " ".join(read("/proc/loadavg").split()[:3])


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "roles", "plugins", "playbooks"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" with uncommitted changes under roles/, plugins/ or playbooks/" if dirty else "")


def tool_version(argv: Sequence[str], env: dict[str, str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0].strip() if out else "unknown"


def installer_text(results: Results) -> str:
    """Why the pip/uv ratio of a whole first converge is what it is, from this run's medians."""
    uv, install_uv, install_pip = (
        results.get("first_converge.uv"),
        results.get("first_converge.install_uv"),
        results.get("first_converge.install_pip"),
    )
    if uv is None or install_uv is None or install_pip is None:
        return ""
    a, b = install_uv.median, install_pip.median
    rest = uv.median - a
    bound = (b - 3 * a) / 2
    if bound <= 0:
        reach = (
            f"Since pip's install step takes only {b / a:.2f}x as long as uv's (the medians' ratio),"
            " not even a converge that did nothing but install could be 3x faster with uv."
        )
    else:
        reach = (
            f"A converge with uv is 3x faster than with pip only if that rest is at most"
            f" (pip install - 3 x uv install) / 2 = {bound:.2f} s."
        )
    return f"""
The installer changes only the install step, creating the venv and installing the pins
(`first_converge.install_*`): {a:.2f} s with uv against {b:.2f} s with pip, medians. The rest
of a first converge, {rest:.2f} s with uv, is the same with either: gathering facts, the other
tasks with an SSH round trip each, and devpi's first start with its argon2 derivation. So the
whole converge's ratio is (rest + pip install) / (rest + uv install). {reach}
"""


def render_docs(results: Results, meta: dict[str, str]) -> str:
    def med(key: str, default: str = "-") -> str:
        s = results.get(key)
        return fmt(s.median, s.unit) if s is not None else default

    target_rows = "\n".join(
        f"| {t.label} | {t.goal} | {t.measured} | **{verdict(t.met)}** |" for t in targets(results)
    )
    notes = "\n".join(f"- {n}" for n in results.notes) or "- none"
    first_sections = []
    for variant, items in results.first_profiles.items():
        slowest = sorted(
            (t for t in items if t.durations), key=lambda t: -statistics.median(t.durations)
        )[:5]
        rows = "\n".join(
            f"| {t.name.replace('|', '/')} | {statistics.median(t.durations):.2f} |"
            for t in slowest
        )
        first_sections.append(
            f"First converge with {variant}, the five slowest tasks (median s):\n\n"
            f"| task | s |\n| --- | ---: |\n{rows}\n"
        )
    first_text = "\n".join(first_sections) or "(first converge not measured in this run)\n"
    first_text += installer_text(results)
    noop_text = (
        profile_markdown(results.noop_profile, results.noop_outside_tasks)
        if results.noop_profile
        else "(no-op converge not measured in this run)"
    )
    empty_text = (
        profile_markdown(results.empty_profile, results.empty_outside_tasks)
        if results.empty_profile
        else ""
    )
    projects = results.facts.get("projects", "about 900 000")
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DOCS_TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    ).get_template(DOCS_TEMPLATE.name)
    return template.render(
        meta=meta,
        med=med,
        target_rows=target_rows,
        notes=notes,
        first_text=first_text,
        noop_text=noop_text,
        empty_text=empty_text,
        projects=projects,
        table=markdown_table(results),
        FIRST_INSTALL=FIRST_INSTALL,
    )
