# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The command tools/bench: its flags, one run of the chosen measurements, what it prints and
the files it writes (docs/benchmarks.md, .cache/bench/<UTC time>/samples.json)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from mcquack_bench.context import Context
from mcquack_bench.hosts import Bench
from mcquack_bench.measurements import HOSTS, NAMES, selected
from mcquack_bench.plays import profile_text
from mcquack_bench.report import git_revision, loadavg, machine, render_docs, tool_version
from mcquack_bench.results import Results, text_table
from mcquack_bench.settings import DOCS, ROOT, TESTHOST, BenchError, log, role_default
from mcquack_bench.targets import targets, targets_text


def interrupted(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/bench",
        description="Measure the devpi role on throwaway systemd test hosts.",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="repetitions of each measurement (default 5)"
    )
    parser.add_argument(
        "--only",
        default=",".join(NAMES),
        help=f"comma-separated subset of {','.join(NAMES)} (default: all)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help=f"write the report here (default for a full run: {DOCS.relative_to(ROOT)})",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write the report")
    parser.add_argument("--json", type=Path, help="also write every sample as JSON to this file")
    parser.add_argument(
        "--old-server-version",
        default="6.19.3",
        help="upgrade: devpi-server to start from (default 6.19.3)",
    )
    parser.add_argument(
        "--old-web-version",
        default="5.1.0",
        help="upgrade: devpi-web to start from (default 5.1.0)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(unknown)}")
    args.only = [m for m in NAMES if m in chosen]
    return args


def docs_path(args: argparse.Namespace) -> Path | None:
    """Where the report goes: --docs, else docs/benchmarks.md after a full run, else nowhere."""
    if args.no_docs:
        return None
    docs: Path | None = args.docs or (None if len(args.only) < len(NAMES) else DOCS)
    return docs


def samples(results: Results, meta: dict[str, str]) -> dict[str, Any]:
    """Every sample of the run, with the run's facts, as samples.json holds them."""
    return {
        "meta": meta,
        "series": {k: {"unit": s.unit, "label": s.label, "values": s.values}
                   for k, s in results.series.items()},
        "notes": results.notes,
    }  # fmt: skip


def preflight() -> None:
    if os.geteuid() != 0:
        raise BenchError(
            "needs root: the test hosts are systemd-nspawn containers (tests/testhost)"
        )
    link = ROOT / ".cache" / "collections" / "ansible_collections" / "mcquack" / "devpi"
    if not link.exists():
        raise BenchError(f"{link.relative_to(ROOT)} is missing: run `mise run setup` first")
    up = {line.split("\t")[0] for line in subprocess.run(
        [sys.executable, str(TESTHOST), "list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()}  # fmt: skip
    clash = sorted(up & {name for name, _net in HOSTS.values()})
    if clash:
        raise BenchError(f"test hosts from an earlier bench are up: {', '.join(clash)} "
                         f"(remove them with tests/testhost/testhost.py down NAME)")  # fmt: skip


def run(args: argparse.Namespace, command: str) -> int:
    preflight()
    started = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = ROOT / ".cache" / "bench" / stamp
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o700)
    log(f"logs and samples in {run_dir.relative_to(ROOT)}; load average {loadavg()}")
    results = Results()
    bench = Bench(run_dir, HOSTS)
    load_start = loadavg()
    context = Context(bench, results, args)
    try:
        for measurement in selected(args.only):
            name = measurement.step
            t, load = time.monotonic(), loadavg()
            log(f"--- {name} (load average {load})")
            if float(load.split()[0]) > 1.0:
                log("the machine is busy: other work skews the timings (see the load averages)")
            measurement.measure(context)
            took = time.monotonic() - t
            log(f"--- {name} took {took:.0f} s")
            results.notes.append(
                f"{name}: {took:.0f} s, load average {load} before and {loadavg()} after"
            )
    finally:
        bench.down_all()
    total = time.monotonic() - started
    meta = machine() | {
        "date": date,
        "command": command,
        "runs": str(args.runs),
        "total": f"{total / 60:.1f} min ({total:.0f} s)",
        "revision": git_revision(),
        "server": role_default("devpi_server_version"),
        "web": role_default("devpi_web_version"),
        "old": f"devpi-server {args.old_server_version} + devpi-web {args.old_web_version}",
        "ansible": tool_version(["ansible-playbook", "--version"], bench.env),
        "load_start": load_start,
        "load_end": loadavg(),
    }
    print(text_table(results))
    print()
    print(targets_text(targets(results)))
    if results.noop_profile:
        print("\nno-op converge, per task:")
        print(profile_text(results.noop_profile, results.noop_outside_tasks))
        print("\nempty play, per task:")
        print(profile_text(results.empty_profile, results.empty_outside_tasks))
    for note in results.notes:
        print(f"note: {note}")
    print(f"\ntotal: {total:.0f} s")
    docs = docs_path(args)
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(render_docs(results, meta))
        log(f"wrote {docs}")
    data = json.dumps(samples(results, meta), indent=2) + "\n"
    (run_dir / "samples.json").write_text(data)
    if args.json:
        args.json.write_text(data)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, interrupted)
    command = shlex.join(["tools/bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args, command)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; test hosts removed", file=sys.stderr)
        return 130
