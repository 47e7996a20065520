# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""noop: ansible-playbook playbooks/devpi.yml on a converged host against an empty play
(gather_facts: true, no tasks) on the same host; tasks that ran and were skipped, changed=0 and
an unchanged MainPID; a per-task profile (one more run with -vvv counts the SSH round trips of
each task)."""

from __future__ import annotations

from mcquack_bench.context import Context
from mcquack_bench.plays import PlayRun, attach_ssh_counts, profile, ssh_execs_per_task
from mcquack_bench.results import ratio_pairs
from mcquack_bench.settings import PLAYBOOK, log


def measure(context: Context) -> None:
    bench, results, host, runs = context.bench, context.results, context.steady(), context.runs
    empty = bench.run_dir / "empty-play.yml"
    # Warm-up (not counted): the SSH connection and the file cache, for both plays alike.
    bench.settle(host)
    bench.converge(host, "noop-warmup")
    bench.playbook(host, empty, "empty-warmup", with_vars=False)
    noops: list[PlayRun] = []
    empties: list[PlayRun] = []
    for i in range(runs):
        pid = bench.main_pid(host)
        order = ["noop", "empty"] if i % 2 == 0 else ["empty", "noop"]
        for which in order:
            if which == "noop":
                noops.append(bench.playbook(host, PLAYBOOK, "noop"))
            else:
                empties.append(bench.playbook(host, empty, "empty", with_vars=False))
        noop, blank = noops[-1], empties[-1]
        stats = noop.stats()
        results.add("noop.converge", "s", "no-op converge of playbooks/devpi.yml", noop.wall)
        results.add("noop.empty_play", "s", "empty play (gather_facts: true, no tasks)", blank.wall)
        results.add(
            "noop.tasks_ok", "count", "no-op recap: ok (incl. Gathering Facts)", stats["ok"]
        )
        results.add("noop.tasks_skipped", "count", "no-op recap: skipped", stats["skipped"])
        results.add("noop.changed", "count", "no-op recap: changed (must be 0)", stats["changed"])
        after = bench.main_pid(host)
        results.add("noop.mainpid_changed", "count", "no-op: MainPID changed (must be 0)",
                    float(after != pid))  # fmt: skip
        results.noop_outside_tasks.append(noop.outside_tasks())
        results.empty_outside_tasks.append(blank.outside_tasks())
        log(f"no-op run {i + 1}/{runs}: {noop.wall:.2f} s vs empty {blank.wall:.2f} s, "
            f"ok={stats['ok']} skipped={stats['skipped']} changed={stats['changed']}, "
            f"MainPID {pid} -> {after}")  # fmt: skip
    ratio_pairs(results, "noop.over_empty", "no-op converge / empty play, pair by pair",
                "noop.converge", "noop.empty_play")  # fmt: skip
    results.noop_profile = profile(noops)
    results.empty_profile = profile(empties)
    # One more no-op run with -vvv (not timed) counts the SSH round trips of every task.
    verbose = bench.playbook(host, PLAYBOOK, "noop-vvv", verbose=True)
    counts = ssh_execs_per_task(verbose.output)
    attach_ssh_counts(results.noop_profile, counts)
    role = [c for c in counts if c[0] != "Gathering Facts"]
    results.add("noop.remote_tasks", "count", "no-op: role tasks that reached the host (-vvv run)",
                sum(1 for c in role if c[1] > 0))  # fmt: skip
    results.add("noop.remote_modules", "count",
                "no-op: module runs on the host, facts excluded (-vvv run)",
                sum(c[2] for c in role))  # fmt: skip
    results.add("noop.ssh_round_trips", "count",
                "no-op: SSH round trips, facts excluded (-vvv run)", sum(c[1] for c in role))  # fmt: skip
    results.add("noop.facts_ssh_round_trips", "count", "no-op: SSH round trips of Gathering Facts",
                sum(c[1] for c in counts if c[0] == "Gathering Facts"))  # fmt: skip
    empty_verbose = bench.playbook(host, empty, "empty-vvv", verbose=True, with_vars=False)
    attach_ssh_counts(results.empty_profile, ssh_execs_per_task(empty_verbose.output))
