# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The measurement table: what `tools/bench --only` can name, which module measures it, and
the test hosts it boots. The bench runs the rows in this order.

A new measurement is a module with measure(context) and a row here; a host it boots gets a
role name and a net of its own (bench-<role>, 10.213.<net>.0/24 as tests/testhost assigns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from mcquack_bench import backup, defaults, first, noop, replica, start, upgrade
from mcquack_bench.context import Context


@dataclass(frozen=True)
class Measurement:
    step: str  # its name in the log and in the report's notes
    measure: Callable[[Context], None]
    hosts: Mapping[str, int]  # the host roles it boots and the net of each
    names: tuple[str, ...] = field(default=())  # what --only calls it (default: its step)

    @property
    def only(self) -> tuple[str, ...]:
        return self.names or (self.step,)


MEASUREMENTS = (
    Measurement("first", first.measure, {"first": 60}),
    Measurement("noop", noop.measure, {"steady": 61}),
    # One step: each memory reading follows one of the starts.
    Measurement("start/memory", start.measure, {"steady": 61}, names=("start", "memory")),
    Measurement("upgrade", upgrade.measure, {"upgrade": 62}),
    Measurement("defaults", defaults.measure, {"defaults": 63}),
    Measurement("backup", backup.measure, {"backup": 64}),
    Measurement("replica", replica.measure, {"primary": 65, "replica": 66}),
)

# Every name --only accepts, in the table's order.
NAMES = tuple(name for measurement in MEASUREMENTS for name in measurement.only)

# Each host role's test host: its name and its net.
HOSTS = {
    role: (f"bench-{role}", net)
    for measurement in MEASUREMENTS
    for role, net in measurement.hosts.items()
}


def selected(only: Iterable[str]) -> list[Measurement]:
    """The rows to run, in the table's order, for the names chosen with --only."""
    chosen = set(only)
    return [m for m in MEASUREMENTS if chosen.intersection(m.only)]
