# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""first: the first converge of playbooks/devpi.yml to devpi answering /+api on a freshly booted
host (up, prepare, timed converge, down): the role as shipped (uv, which
molecule/resources/prepare.yml installs) and with devpi_installer: pip."""

from __future__ import annotations

from typing import Any

from mcquack_bench.context import Context
from mcquack_bench.plays import PlayRun, profile, task_status
from mcquack_bench.results import ratio_pairs
from mcquack_bench.settings import log

# The install step of a first converge: creating the venv and installing the pins into it,
# the only tasks in which the installer differs.
INSTALL_TASKS = (
    "Create the venv with uv",
    "Create the venv with python -m venv",
    "Install the pins with uv",
    "Install the pins with pip",
)


def install_seconds(run: PlayRun) -> float:
    """Seconds spent in the install step's tasks that ran (skipped ones excluded)."""
    total = 0.0
    for task in run.tasks():
        if task["name"].split(" : ")[-1] in INSTALL_TASKS and task_status(task)[0] != "skipped":
            total += (task["end"] or task["start"]) - task["start"]
    return total


def measure(context: Context) -> None:
    bench, results, runs = context.bench, context.results, context.runs
    variants: dict[str, dict[str, Any] | None] = {"uv": None, "pip": {"devpi_installer": "pip"}}
    plays: dict[str, list[PlayRun]] = {"uv": [], "pip": []}
    for i in range(runs):
        order = ["uv", "pip"] if i % 2 == 0 else ["pip", "uv"]
        for variant in order:
            host = bench.up("first")
            try:
                bench.prepare(host)
                run = bench.converge(host, f"first-{variant}", variants[variant])
            finally:
                bench.down(host)
            plays[variant].append(run)
            label = "first converge to /+api, " + (
                "role as shipped (uv)" if variant == "uv" else "devpi_installer: pip"
            )
            results.add(f"first_converge.{variant}", "s", label, run.wall)
            installing = install_seconds(run)
            results.add(f"first_converge.install_{variant}", "s",
                        f"of which creating the venv and installing the pins ({variant})",
                        installing)  # fmt: skip
            log(f"first converge {variant} run {i + 1}/{runs}: {run.wall:.2f} s, "
                f"of which install {installing:.2f} s")  # fmt: skip
    ratio_pairs(results, "first_converge.pip_over_uv", "pip time / uv time, pair by pair",
                "first_converge.pip", "first_converge.uv")  # fmt: skip
    ratio_pairs(results, "first_converge.install_pip_over_uv",
                "install step only: pip time / uv time, pair by pair",
                "first_converge.install_pip", "first_converge.install_uv")  # fmt: skip
    for variant, runs_ in plays.items():
        results.first_profiles[variant] = profile(runs_)
