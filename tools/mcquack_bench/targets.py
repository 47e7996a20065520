# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The targets docs/benchmarks.md judges: one row each, in the order the report lists them.

A row is a label, the goal as the report states it, and how to judge it from a run's results:
most are a bound on one median (at_most, at_least); a few compare several series. A target
whose series was not measured in a run is "not measured".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcquack_bench.results import Results

# What a target says about a run: the measured value as the report shows it, and whether the
# goal is met; None when the run did not measure it.
Judgement = tuple[str, bool] | None


@dataclass(frozen=True)
class Target:
    label: str
    goal: str
    judge: Callable[[Results], Judgement]


@dataclass(frozen=True)
class Verdict:
    label: str
    goal: str
    measured: str
    met: bool | None  # None: not measured


def median(results: Results, key: str) -> float | None:
    series = results.get(key)
    return series.median if series is not None else None


def at_most(key: str, limit: float, shown: str) -> Callable[[Results], Judgement]:
    """The median of `key` is at most `limit`; `shown` formats it (str.format)."""

    def judge(results: Results) -> Judgement:
        value = median(results, key)
        return None if value is None else (shown.format(value), value <= limit)

    return judge


def at_least(key: str, limit: float, shown: str) -> Callable[[Results], Judgement]:
    """The median of `key` is at least `limit`; `shown` formats it (str.format)."""

    def judge(results: Results) -> Judgement:
        value = median(results, key)
        return None if value is None else (shown.format(value), value >= limit)

    return judge


def noop_over_empty(results: Results) -> Judgement:
    ratio, noop = median(results, "noop.over_empty"), median(results, "noop.converge")
    if ratio is None or noop is None:
        return None
    return f"{ratio:.2f}x ({noop:.2f} s)", ratio <= 2.0


def noop_changes_nothing(results: Results) -> Judgement:
    changed, moved = results.get("noop.changed"), results.get("noop.mainpid_changed")
    if changed is None or moved is None:
        return None
    n_changed, n_moved = max(changed.values), sum(moved.values)
    return (
        f"changed max {n_changed:.0f}, MainPID changed in {n_moved:.0f} runs",
        n_changed == 0 and n_moved == 0,
    )


def upgrade_downtime(results: Results) -> Judgement:
    down, start = median(results, "upgrade.downtime"), median(results, "start.web")
    if down is None or start is None:
        return None
    return f"{down:.2f} s (start {start:.2f} s + 1 s = {start + 1:.2f} s)", down <= start + 1.0


def first_install_succeeds(results: Results) -> Judgement:
    failed = results.get("defaults.first_install_failed.shipped")
    if failed is None:
        return None
    attempts = sum(failed.values)
    return f"{attempts:.0f} failed attempts in {len(failed.values)} runs", attempts == 0


TARGETS = (
    Target("No-op converge vs. empty play", "≤ 2.0x", noop_over_empty),
    Target(
        "No-op converge: module runs on the host (facts excluded)",
        "≤ ~6",
        at_most("noop.remote_modules", 6, "{:.0f}"),
    ),
    Target("No-op converge changes nothing", "changed=0, same MainPID", noop_changes_nothing),
    Target(
        "First converge (uv) to /+api", "≤ 20 s", at_most("first_converge.uv", 20.0, "{:.2f} s")
    ),
    Target(
        "First converge: pip time / uv time",
        "≥ 3x",
        at_least("first_converge.pip_over_uv", 3.0, "{:.2f}x"),
    ),
    Target("Upgrade downtime", "≤ one devpi start + 1 s", upgrade_downtime),
    Target(
        "RSS without devpi-web, 60 s after start",
        "≤ 100 MiB",
        at_most("memory.rss_noweb", 100.0, "{:.1f} MiB"),
    ),
    Target(
        "Role defaults: RSS 60 s after the first start",
        "≤ 120 MiB",
        at_most("defaults.rss.shipped", 120.0, "{:.1f} MiB"),
    ),
    Target(
        "Role defaults: CPU seconds in the first minute",
        "≤ 15 s",
        at_most("defaults.cpu.shipped", 15.0, "{:.1f} s"),
    ),
    Target(
        "Role defaults: first install right after converge",
        "succeeds every time",
        first_install_succeeds,
    ),
)


def targets(results: Results, table: Sequence[Target] = TARGETS) -> list[Verdict]:
    """Each target of `table` judged from `results`."""
    verdicts = []
    for target in table:
        judged = target.judge(results)
        measured, met = ("-", None) if judged is None else judged
        verdicts.append(Verdict(target.label, target.goal, measured, met))
    return verdicts


def targets_text(items: Sequence[Verdict]) -> str:
    rows = [("target", "goal", "measured (median)", "verdict")]
    rows += [(t.label, t.goal, t.measured, verdict(t.met)) for t in items]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3]])
        for r in rows
    )


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "not met")
