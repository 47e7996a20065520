# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""start and memory, measured together on the steady host (memory reads follow the starts):

start     systemctl restart devpi to /+api answering (polled from this machine).
memory    devpi-server's RSS 60 s after a restart, with devpi-web and without
          (devpi_web_enabled: false).
"""

from __future__ import annotations

from mcquack_bench.context import Context
from mcquack_bench.results import Results
from mcquack_bench.settings import RSS_AFTER, log


def record_memory(results: Results, key: str, what: str, proc: dict[str, float]) -> str:
    after = f"{RSS_AFTER:.0f} s"
    results.add(
        f"memory.rss_{key}", "MiB", f"devpi-server RSS {after} after start, {what}", proc["rss"]
    )
    results.add(f"memory.peak_{key}", "MiB", f"peak RSS (VmHWM) in the first {after}, {what}",
                proc["hwm"])  # fmt: skip
    results.add(f"memory.cpu_{key}", "s", f"CPU seconds in the first {after}, {what}", proc["cpu"])
    return f"RSS {proc['rss']:.1f} MiB (peak {proc['hwm']:.0f}), CPU {proc['cpu']:.1f} s"


def measure(context: Context) -> None:
    bench, results, runs = context.bench, context.results, context.runs
    host, do_memory = context.steady(), "memory" in context.only
    for web in (True, False):
        if not web:
            if not do_memory:
                break
            bench.converge(host, "web-off", {"devpi_web_enabled": False})
            log(f"devpi-web switched off: {bench.venv_versions(host)!r}")
            bench.settle(host)
        suffix = "web" if web else "noweb"
        what = "with devpi-web" if web else "without devpi-web"
        for i in range(runs):
            _started, answered, returned = bench.restart(host)
            results.add(f"start.{suffix}", "s", f"systemctl restart to /+api answering, {what}",
                        answered)  # fmt: skip
            results.add(f"start.{suffix}.systemctl", "s",
                        f"of which systemctl restart (stop + spawn) returned, {what}", returned)  # fmt: skip
            message = f"start {suffix} run {i + 1}/{runs}: /+api after {answered:.2f} s"
            if do_memory:
                proc = bench.process_at(host, RSS_AFTER)
                label = f"restart, {what}"
                message += ", " + record_memory(results, suffix, label, proc)
            log(message)
