# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Ansible's side of a measurement: a playbook run as the mcquack_bench callback reports it
(tools/bench_plugins/callback), per-task profiles over several runs, and the SSH round trips
of each task read from a -vvv log."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcquack_bench.settings import BenchError

# Actions that Ansible runs on the controller: everything else reaches the managed host.
CONTROLLER_ACTIONS = {
    "add_host", "assert", "debug", "fail", "group_by", "import_role", "import_tasks",
    "include_role", "include_tasks", "include_vars", "meta", "pause", "set_fact", "set_stats",
    "validate_argument_spec",
}  # fmt: skip


@dataclass
class TaskProfile:
    name: str
    action: str
    status: str
    remote: bool
    runs: int  # module runs by Ansible's account (loop items count one each)
    durations: list[float] = field(default_factory=list)
    ssh_execs: int | None = None  # from a -vvv run: SSH round trips
    module_execs: int | None = None  # from a -vvv run: of which module runs on the host


@dataclass
class PlayRun:
    wall: float
    start: float
    end: float
    report: dict[str, Any]
    output: str
    log: Path

    def stats(self) -> dict[str, int]:
        hosts: dict[str, dict[str, int]] = self.report.get("stats", {})
        if len(hosts) != 1:
            raise BenchError(f"expected one host in the recap, got {sorted(hosts)} ({self.log})")
        return next(iter(hosts.values()))

    def tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.report.get("tasks", [])
        return tasks

    def task_seconds(self) -> float:
        return float(sum((t["end"] or t["start"]) - t["start"] for t in self.tasks()))

    def outside_tasks(self) -> float:
        """Wall time not spent in any task: interpreter start, parsing, inventory, teardown."""
        return self.wall - self.task_seconds()


def task_status(task: dict[str, Any]) -> tuple[str, int]:
    """The task's status on its (single) host and how many module runs it made."""
    hosts: dict[str, dict[str, Any]] = task["hosts"]
    if not hosts:
        return "no result", 0
    entry = next(iter(hosts.values()))
    status = str(entry["status"])
    if status == "ok" and entry.get("changed"):
        status = "changed"
    if status == "skipped":
        return status, 0
    if "items" in entry:
        return status, int(entry["items"]) - int(entry.get("items_skipped", 0))
    return status, 1


def is_remote(action: str) -> bool:
    return action.rsplit(".", 1)[-1] not in CONTROLLER_ACTIONS


def profile(runs: Sequence[PlayRun]) -> list[TaskProfile]:
    """Per-task durations over several runs of the same playbook (tasks matched by position)."""
    out: list[TaskProfile] = []
    for index, task in enumerate(runs[0].tasks()):
        status, count = task_status(task)
        action = str(task["action"])
        item = TaskProfile(task["name"], action, status, is_remote(action) and count > 0, count)
        for run in runs:
            tasks = run.tasks()
            if index < len(tasks) and tasks[index]["name"] == task["name"]:
                other = tasks[index]
                item.durations.append((other["end"] or other["start"]) - other["start"])
        out.append(item)
    return out


TASK_BANNER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]")
# A module run: the remote shell starts the interpreter (`.../python3.11 && sleep 0`, or through
# sudo: `echo BECOME-SUCCESS-... ; .../python3.11`); other round trips are housekeeping.
PYTHON_EXEC = re.compile(r"/python[\d.]*['\s]")


def ssh_execs_per_task(output: str) -> list[tuple[str, int, int]]:
    """(task, SSH round trips, of which module runs) per task from an ansible-playbook -vvv log.

    With pipelining a module run is one SSH command that starts the remote Python; the other
    round trips are Ansible's housekeeping (`echo ~`, making and removing a temporary directory)."""
    counts: list[tuple[str, int, int]] = []
    for line in output.splitlines():
        banner = TASK_BANNER.match(line)
        if banner:
            counts.append((banner.group(1).strip(), 0, 0))
        elif "SSH: EXEC ssh" in line and counts:
            name, n, modules = counts[-1]
            counts[-1] = (name, n + 1, modules + (1 if PYTHON_EXEC.search(line) else 0))
    return counts


def attach_ssh_counts(items: list[TaskProfile], counts: Sequence[tuple[str, int, int]]) -> None:
    queue = list(counts)
    for item in items:
        for i, (name, n, modules) in enumerate(queue):
            if name == item.name:
                item.ssh_execs, item.module_execs = n, modules
                item.remote = n > 0
                del queue[: i + 1]
                break


def short_name(name: str, width: int = 0) -> str:
    """A task name without its role prefix, cut to `width` characters when given."""
    name = re.sub(r"^[\w.]+ : ", "", name)
    return name if not width or len(name) <= width else name[: width - 3] + "..."


def profile_rows(items: Sequence[TaskProfile], width: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for i, t in enumerate(items, 1):
        rows.append(
            (str(i), short_name(t.name, width), t.action.removeprefix("ansible.builtin."),
             t.status, "yes" if t.remote else "no",
             str(t.runs if t.module_execs is None else t.module_execs),
             "-" if t.ssh_execs is None else str(t.ssh_execs),
             f"{statistics.median(t.durations) * 1000:.0f}" if t.durations else "-",
             f"{max(t.durations) * 1000:.0f}" if t.durations else "-")
        )  # fmt: skip
    return rows


PROFILE_HEADER = (
    "#",
    "task",
    "action",
    "status",
    "on host",
    "modules",
    "SSH",
    "median ms",
    "max ms",
)


def profile_text(items: Sequence[TaskProfile], outside: Sequence[float]) -> str:
    rows = [PROFILE_HEADER, *profile_rows(items, 60)]
    if outside:
        rows.append(
            ("", "(outside tasks: start-up, parsing, inventory, recap)", "", "", "", "", "",
             f"{statistics.median(outside) * 1000:.0f}", f"{max(outside) * 1000:.0f}")
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(PROFILE_HEADER))]
    right = {0, 5, 6, 7, 8}
    return "\n".join(
        "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r))
        for r in rows
    )


def profile_markdown(items: Sequence[TaskProfile], outside: Sequence[float]) -> str:
    lines = [
        "| " + " | ".join(PROFILE_HEADER) + " |",
        "| ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in profile_rows(items, 0):
        cells = [c.replace("|", "\\|") for c in row]
        cells[2] = f"`{cells[2]}`"
        lines.append("| " + " | ".join(cells) + " |")
    if outside:
        lines.append(
            f"| | *outside tasks: interpreter start-up, parsing, inventory, recap* | | | | | | "
            f"{statistics.median(outside) * 1000:.0f} | {max(outside) * 1000:.0f} |"
        )
    return "\n".join(lines)
