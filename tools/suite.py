# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The whole test suite as parts run side by side (tools/test is the command).

Each part is one command (the static checks, the ecosystem's checks per ansible-core, pytest,
each molecule scenario). They run in lanes: at most `jobs` at once, the longest first (by the
times of the last run, kept in .cache/test/times.json, else by the order of PARTS). Each part's
output goes to .cache/test/<part>.log; when a part ends its last lines are printed, and all of
its output when it failed. At the end: a table of each part's time and the whole, written to
.cache/test/times.md as well, and "N passed, N failed" (parts).

A part is held back while a part it conflicts with runs (`after`): e.g. the timing-sensitive
scenarios do not run beside the CPU-heavy ecosystem checks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Part:
    name: str
    argv: tuple[str, ...]
    # Parts that must not run at the same time as this one (both ways).
    apart: tuple[str, ...] = ()


@dataclasses.dataclass
class Outcome:
    name: str
    returncode: int
    seconds: float
    started: float


def order(parts: Sequence[Part], last_times: dict[str, float]) -> list[Part]:
    """The longest first by the last run's times; parts never timed keep their place, first."""
    unknown = [p for p in parts if p.name not in last_times]
    known = sorted((p for p in parts if p.name in last_times), key=lambda p: -last_times[p.name])
    return unknown + known


def conflicts(part: Part, running: Sequence[Part]) -> bool:
    return any(part.name in other.apart or other.name in part.apart for other in running)


def pick(waiting: Sequence[Part], running: Sequence[Part]) -> Part | None:
    """The first waiting part that conflicts with none of the running ones."""
    return next((part for part in waiting if not conflicts(part, running)), None)


def table(outcomes: Sequence[Outcome], total: float) -> str:
    """A markdown table of each part's time, in the order they started, and the whole."""
    lines = ["| part | result | minutes | started at (min) |", "| --- | --- | --- | --- |"]
    first = min((o.started for o in outcomes), default=0.0)
    for o in sorted(outcomes, key=lambda o: o.started):
        result = "passed" if o.returncode == 0 else f"FAILED ({o.returncode})"
        lines.append(
            f"| {o.name} | {result} | {o.seconds / 60:.1f} | {(o.started - first) / 60:.1f} |"
        )
    lines.append(f"| **whole suite** | | **{total / 60:.1f}** | |")
    return "\n".join(lines)


def run(
    parts: Sequence[Part],
    jobs: int,
    log_dir: Path,
    say: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
    poll: float = 1.0,
) -> list[Outcome]:
    """Run the parts, at most `jobs` at once, none beside a part it conflicts with."""
    log_dir.mkdir(parents=True, exist_ok=True)
    waiting = list(parts)
    running: dict[str, tuple[Part, subprocess.Popen[bytes], float]] = {}
    outcomes: list[Outcome] = []
    while waiting or running:
        while waiting and len(running) < jobs:
            part = pick(waiting, [p for p, _proc, _t in running.values()])
            if part is None:
                break
            waiting.remove(part)
            with (log_dir / f"{part.name}.log").open("wb") as log:
                proc = subprocess.Popen(
                    part.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
                )
            running[part.name] = (part, proc, time.monotonic())
            say(f"test: {part.name} started ({' '.join(part.argv)})")
        for name, (_part, proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            outcome = Outcome(name, proc.returncode, time.monotonic() - started, started)
            outcomes.append(outcome)
            report(outcome, log_dir / f"{name}.log", say)
        time.sleep(poll)
    return outcomes


def report(outcome: Outcome, log: Path, say: Callable[[str], None]) -> None:
    lines = log.read_text(errors="replace").splitlines()
    verdict = "passed" if outcome.returncode == 0 else f"FAILED with exit code {outcome.returncode}"
    shown = lines if outcome.returncode else lines[-15:]
    say(f"test: ---- {outcome.name} {verdict} in {outcome.seconds / 60:.1f} min; its log"
        f"{'' if outcome.returncode else ' ends'}: ----")  # fmt: skip
    for line in shown:
        say(f"  {outcome.name} | {line}")


def main(parts: Sequence[Part], argv: Sequence[str]) -> int:
    """tools/test [--jobs N] [PART ...]: run the suite (or the named parts)."""
    args = list(argv)
    jobs = 2
    if "--jobs" in args:
        at = args.index("--jobs")
        jobs = int(args[at + 1])
        del args[at : at + 2]
    known = {p.name: p for p in parts}
    unknown = [name for name in args if name not in known]
    if unknown:
        print(
            f"test: no such part: {', '.join(unknown)} (parts: {', '.join(known)})", file=sys.stderr
        )
        return 2
    chosen = [known[name] for name in args] if args else list(parts)
    state = ROOT / ".cache" / "test"
    times_file = state / "times.json"
    try:
        last = json.loads(times_file.read_text())
    except (OSError, ValueError):
        last = {}
    started = time.monotonic()
    outcomes = run(order(chosen, last), jobs, state, env={**os.environ})
    total = time.monotonic() - started
    times = {**last, **{o.name: round(o.seconds, 1) for o in outcomes}}
    times_file.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
    summary = table(outcomes, total)
    (state / "times.md").write_text(summary + "\n")
    print(summary)
    failed = [o.name for o in outcomes if o.returncode]
    if failed:
        print(f"test: failed: {', '.join(failed)}", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
