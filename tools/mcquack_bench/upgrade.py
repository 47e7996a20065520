# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""upgrade: a host converged at older pins (--old-server-version, --old-web-version), then the
timed converge to the role's defaults while this machine polls /+api every 0.1 s."""

from __future__ import annotations

import time

from mcquack_bench.context import Context
from mcquack_bench.hosts import Poller, downtime
from mcquack_bench.settings import PLAYBOOK_TIMEOUT, POLL_INTERVAL, BenchError, log, role_default


def measure(context: Context) -> None:
    bench, results, runs = context.bench, context.results, context.runs
    old_server, old_web = str(context.args.old_server_version), str(context.args.old_web_version)
    new_server, new_web = role_default("devpi_server_version"), role_default("devpi_web_version")
    old = {"devpi_server_version": old_server, "devpi_web_version": old_web}
    for i in range(runs):
        host = bench.up("upgrade")
        try:
            bench.prepare(host)
            bench.converge(host, "upgrade-old", old)
            bench.settle(host)
            before = bench.venv_versions(host)
            if old_server not in before or old_web not in before:
                raise BenchError(f"expected the old pins on {host.name}, found {before!r}")
            pid = bench.main_pid(host)
            poller = Poller(host.api, POLL_INTERVAL, PLAYBOOK_TIMEOUT + 60)
            poller.start()
            time.sleep(1.0)
            if not (poller.samples and poller.samples[0][1]):
                poller.halt()
                raise BenchError(f"{host.api} did not answer before the upgrade")
            try:
                run = bench.converge(host, "upgrade-new")
                # Keep polling until a success after the converge (bounded).
                settle = time.monotonic() + 10.0
                while time.monotonic() < settle and not (
                    poller.samples and poller.samples[-1][0] > run.end and poller.samples[-1][1]
                ):
                    time.sleep(POLL_INTERVAL)
            finally:
                poller.halt()
            after = bench.venv_versions(host)
            if new_server not in after or new_web not in after:
                raise BenchError(f"expected the new pins on {host.name}, found {after!r}")
            if bench.main_pid(host) == pid:
                raise BenchError(f"the upgrade on {host.name} did not restart devpi")
        finally:
            bench.down(host)
        lost, outages = downtime(poller.samples)
        results.add(
            "upgrade.converge", "s", "converge from the old pins to the role's defaults", run.wall
        )
        results.add("upgrade.downtime", "s", "of which /+api did not answer (0.1 s polls)", lost)
        results.add("upgrade.outages", "count", "separate outages seen by the poller", outages)
        log(
            f"upgrade run {i + 1}/{runs}: {run.wall:.2f} s, down {lost:.2f} s in {outages} outage(s)"
        )
