# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""replica: two fresh hosts, a primary and a replica (devpi_role, the replica reading the
primary's secret in the play): the replica's first sync (its devpi start to its /+status at the
primary's serial, polled from this machine every 0.05 s), then uploads to a stage on the
primary and the time until each is on the replica's simple page (upload-to-replica lag)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import statistics
import threading
import time

from devpi_testclient import DevpiClient
from mcquack_bench.context import Context
from mcquack_bench.hosts import Bench, Host
from mcquack_bench.settings import PLAYBOOK_TIMEOUT, PORT, BenchError, log

REPLICA_UPLOADS = 5  # uploads per run whose lag is measured
REPLICA_LAG_LIMIT = 60.0
REPLICA_POLL_INTERVAL = 0.05


def replica_synced(replica: DevpiClient, primary_serial: int) -> bool:
    """The replica has heard from its primary and reached primary_serial."""
    try:
        status = replica.call("GET", "/+status")["result"]
    except (OSError, KeyError, ValueError, http.client.HTTPException):
        return False
    return status.get("primary-serial") is not None and int(status["serial"]) >= primary_serial


class SyncWatch(threading.Thread):
    """Polls a replica's /+status until it has reached the primary's serial; `synced` is the
    monotonic time it first did."""

    def __init__(self, replica: DevpiClient, primary_serial: int, limit: float) -> None:
        super().__init__(daemon=True)
        self.replica, self.primary_serial, self.limit = replica, primary_serial, limit
        self.synced: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        begin = time.monotonic()
        while not self._halt.is_set() and time.monotonic() - begin < self.limit:
            if replica_synced(self.replica, self.primary_serial):
                self.synced = time.monotonic()
                return
            self._halt.wait(REPLICA_POLL_INTERVAL)

    def halt(self) -> None:
        self._halt.set()
        self.join()


def replica_pair(bench: Bench, primary: Host, replica: Host) -> tuple[Host, Host]:
    """The two hosts in one inventory, the primary and its replica as the README declares them."""
    inventory = bench.run_dir / f"inventory-pair-{bench.counter}.json"
    hosts = {}
    for host, role_vars in (
        (primary, {"devpi_role": "primary"}),
        (replica, {"devpi_role": "replica", "devpi_primary_url": f"http://{primary.address}:{PORT}",
                   "devpi_primary_host": primary.name}),
    ):  # fmt: skip
        hosts[host.name] = {**json.loads(host.inventory.read_text())["all"]["children"]["devpi"]
                            ["hosts"][host.name], **role_vars}  # fmt: skip
    inventory.write_text(json.dumps({"all": {"children": {"devpi": {"hosts": hosts}}}}, indent=2))
    return (dataclasses.replace(primary, inventory=inventory),
            dataclasses.replace(replica, inventory=inventory))  # fmt: skip


def measure(context: Context) -> None:
    """A primary and a replica on fresh hosts: the replica's first sync, then upload lags."""
    bench, results, runs = context.bench, context.results, context.runs
    password = bench.root_password
    for i in range(runs):
        primary, replica = bench.up("primary"), bench.up("replica")
        try:
            primary, replica = replica_pair(bench, primary, replica)
            bench.prepare(primary)
            bench.prepare(replica)
            bench.converge(primary, "replica-primary", {"devpi_target_hosts": primary.name})
            primary_devpi, replica_devpi = DevpiClient(primary.url), DevpiClient(replica.url)
            root = primary_devpi.login("root", password)
            root.call("PUT", "/root/dev", {"type": "stage", "bases": ["root/pypi"]})
            serial = int(primary_devpi.call("GET", "/+status")["result"]["serial"])
            watch = SyncWatch(replica_devpi, serial, PLAYBOOK_TIMEOUT)
            watch.start()
            try:
                run = bench.converge(
                    replica, "replica-replica", {"devpi_target_hosts": replica.name}
                )
            finally:
                watch.halt()
            if watch.synced is None:
                raise BenchError(f"the replica never reached serial {serial} ({run.log})")
            first_sync = watch.synced - bench.started_at(replica)
            results.add("replica.first_sync", "s", "replica's first devpi start to its /+status at the "
                        "primary's serial (fresh pair)", first_sync)  # fmt: skip
            results.add("replica.first_converge", "s", "first converge of the replica (primary up)",
                        run.wall)  # fmt: skip
            lags = []
            for n in range(1, REPLICA_UPLOADS + 1):
                version = f"1.{n}"
                root.upload("root/dev", "lagpkg", version, timeout=60.0)
                uploaded = time.monotonic()
                while time.monotonic() - uploaded < REPLICA_LAG_LIMIT:
                    try:
                        page = replica_devpi.simple_page("root/dev", "lagpkg", timeout=5)
                        if f"lagpkg-{version}-" in page:
                            break
                    except (OSError, http.client.HTTPException):
                        pass
                    time.sleep(REPLICA_POLL_INTERVAL / 5)
                else:
                    raise BenchError(
                        f"lagpkg {version} not on the replica within {REPLICA_LAG_LIMIT:.0f} s"
                    )
                lag = time.monotonic() - uploaded
                lags.append(lag)
                results.add("replica.lag", "s", "upload answered by the primary to the version on the "
                            "replica's simple page, polled from this machine", lag)  # fmt: skip
            log(f"replica run {i + 1}/{runs}: first sync {first_sync:.2f} s, replica converge "
                f"{run.wall:.2f} s, lag median {statistics.median(lags):.3f} s "
                f"(min {min(lags):.3f}, max {max(lags):.3f})")  # fmt: skip
        finally:
            bench.down(replica)
            bench.down(primary)
