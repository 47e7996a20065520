# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The samples of a bench run (a series per measured quantity), medians and the results tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from mcquack_bench.plays import TaskProfile


@dataclass
class Series:
    key: str
    unit: str
    label: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))


@dataclass
class Results:
    series: dict[str, Series] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    noop_profile: list[TaskProfile] = field(default_factory=list)
    empty_profile: list[TaskProfile] = field(default_factory=list)
    noop_outside_tasks: list[float] = field(default_factory=list)
    empty_outside_tasks: list[float] = field(default_factory=list)
    first_profiles: dict[str, list[TaskProfile]] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, unit: str, label: str, value: float) -> None:
        series = self.series.setdefault(key, Series(key, unit, label))
        series.values.append(value)

    def get(self, key: str) -> Series | None:
        series = self.series.get(key)
        return series if series is not None and series.values else None


def ratio_pairs(results: Results, key: str, label: str, num: str, den: str) -> None:
    a, b = results.get(num), results.get(den)
    if a is None or b is None:
        return
    for x, y in zip(a.values, b.values, strict=False):
        if y > 0:
            results.add(key, "x", label, x / y)


def fmt(value: float, unit: str) -> str:
    if unit in ("count", "runs"):
        return f"{value:.0f}"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:.2f}"


def table_rows(results: Results) -> list[tuple[str, str, str, str, str, str, str]]:
    rows = []
    for s in results.series.values():
        if not s.values:
            continue
        rows.append(
            (s.key, s.unit, str(len(s.values)), fmt(s.median, s.unit), fmt(min(s.values), s.unit),
             fmt(max(s.values), s.unit), s.label)
        )  # fmt: skip
    return rows


def text_table(results: Results) -> str:
    header = ("measurement", "unit", "n", "median", "min", "max", "what")
    rows = [header, *table_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            *(row[i].rjust(widths[i]) for i in (3, 4, 5)),
            row[6],
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def markdown_table(results: Results) -> str:
    lines = [
        "| measurement | unit | n | median | min | max | what |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, unit, n, med, lo, hi, label in table_rows(results):
        lines.append(f"| `{key}` | {unit} | {n} | {med} | {lo} | {hi} | {label} |")
    return "\n".join(lines)
