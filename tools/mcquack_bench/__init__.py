# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""tools/bench: measure the devpi role on throwaway systemd test hosts, write docs/benchmarks.md.

    tools/bench                  every measurement, 5 repetitions each, writes docs/benchmarks.md
    tools/bench --runs 3         fewer repetitions
    tools/bench --only noop      a subset (see --help); a subset does not write
                                 docs/benchmarks.md unless --docs is given

Every measurement is repeated --runs times (A/B pairs alternate their order from run to run)
and uses the role's defaults and the test settings of tools/demo (system CA bundle, a root
password from a 0600 vars file, devpi_listen_host 0.0.0.0 so this machine reaches devpi).
Ratios are taken pair by pair (run i's A over run i's B), then their median. Hosts are named
bench-* on nets 60-66 and are removed when the bench ends, also on Ctrl-C. Ansible logs and the
raw samples go to .cache/bench/<UTC time>/. Needs root (tests/testhost/testhost.py) and
`mise run setup`.

The package:

    cli.py           the command: flags, the run, the console output, the files it writes
    measurements.py  the measurement table: --only names, module, test hosts of each
    targets.py       the targets table: what docs/benchmarks.md judges, and how
    first.py noop.py start.py upgrade.py defaults.py backup.py replica.py
                     one module a measurement, each with measure(context); its docstring says
                     what it measures
    context.py       what a measurement gets: the bench, the results, the options
    hosts.py         test hosts, Ansible runs, devpi's process on a host, the /+api poller
    plays.py         Ansible's reports (the mcquack_bench callback), per-task profiles
    results.py       samples, medians, the results tables
    report.py        docs/benchmarks.md from tools/benchmarks.md.j2
    settings.py      paths, timings, the bench's error and log

A new measurement is a module with measure(context), one row in measurements.MEASUREMENTS and,
for what it promises, rows in targets.TARGETS.
"""
