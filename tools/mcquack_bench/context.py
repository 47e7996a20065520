# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""What a measurement's measure() is given: the bench, the results it adds to, the options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from mcquack_bench.hosts import Bench, Host
from mcquack_bench.results import Results


@dataclass
class Context:
    bench: Bench
    results: Results
    args: argparse.Namespace  # the command's options (cli.parse_args)

    @property
    def runs(self) -> int:
        """Repetitions of each measurement (--runs)."""
        return int(self.args.runs)

    @property
    def only(self) -> frozenset[str]:
        """The measurement names chosen for this run (--only)."""
        return frozenset(self.args.only)

    def steady(self) -> Host:
        """The long-lived converged host that noop and start share, brought up, prepared,
        converged and left idle on first use."""
        host = self.bench.hosts.get(self.bench.table["steady"][0])
        if host is None:
            host = self.bench.up("steady")
            self.bench.prepare(host)
            self.bench.converge(host, "steady-first")
            self.bench.settle(host)
        return host
