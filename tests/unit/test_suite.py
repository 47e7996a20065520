# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""tools/suite.py: the suite's parts run side by side, longest first, never beside a part they
conflict with; a failed part fails the suite and shows its whole log."""

from __future__ import annotations

import sys
from pathlib import Path

from suite import Outcome, Part, order, pick, run, table


def sleeper(name: str, seconds: float, code: int = 0, apart: tuple[str, ...] = ()) -> Part:
    program = (
        f"import time; print('{name} says hi'); time.sleep({seconds}); raise SystemExit({code})"
    )
    return Part(name, (sys.executable, "-c", program), apart)


def test_the_longest_part_of_the_last_run_goes_first_and_new_parts_before_all() -> None:
    parts = [Part("a", ("true",)), Part("b", ("true",)), Part("c", ("true",))]
    assert [p.name for p in order(parts, {"a": 60, "b": 300})] == ["c", "b", "a"]


def test_a_part_waits_while_a_part_it_conflicts_with_runs() -> None:
    upgrade = Part("upgrade", ("true",), apart=("ecosystem",))
    ecosystem, pytest_part = Part("ecosystem", ("true",)), Part("pytest", ("true",))
    assert pick([upgrade, pytest_part], [ecosystem]) is pytest_part
    assert pick([ecosystem], [upgrade]) is None  # the conflict holds both ways
    assert pick([upgrade], [pytest_part]) is upgrade


def test_parts_run_side_by_side_and_a_failure_shows_its_log(tmp_path: Path) -> None:
    said: list[str] = []
    parts = [
        sleeper("one", 1.0),
        sleeper("two", 1.0, code=3),
        sleeper("three", 0.1, apart=("one",)),
    ]
    outcomes = run(parts, jobs=2, log_dir=tmp_path, say=said.append, poll=0.05)
    by_name = {o.name: o for o in outcomes}
    assert by_name["two"].returncode == 3 and by_name["one"].returncode == 0
    # one and two ran at once; three waited until one had ended.
    assert abs(by_name["one"].started - by_name["two"].started) < 0.5
    assert by_name["three"].started >= by_name["one"].started + by_name["one"].seconds - 0.1
    assert "  two | two says hi" in said and "  one | one says hi" in said
    assert any("two FAILED with exit code 3" in line for line in said)
    assert (tmp_path / "three.log").read_text() == "three says hi\n"


def test_the_table_gives_each_part_and_the_whole() -> None:
    rows = table([Outcome("lint", 0, 120.0, 10.0), Outcome("default", 1, 300.0, 15.0)], 330.0)
    assert "| lint | passed | 2.0 | 0.0 |" in rows
    assert "| default | FAILED (1) | 5.0 | 0.1 |" in rows
    assert rows.endswith("| **whole suite** | | **5.5** | |")
