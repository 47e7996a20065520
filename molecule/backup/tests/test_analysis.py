# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The backup job's unit exposes as little as devpi's, or less: systemd's own scoring of the
loaded devpi-backup.service (and devpi.service) on the host converged with backups on is at
most 3.0 ("OK"). The file's name sorts before test_backup.py, whose last test switches backups
off and so removes the unit."""

from __future__ import annotations

from typing import Any

import pytest

testinfra_hosts = ["devpi-backup"]

LIMIT = 3.0


@pytest.mark.parametrize("unit", ["devpi-backup.service", "devpi.service"])
def test_the_unit_scores_at_most_3(exposure: Any, unit: str) -> None:
    score, word, open_checks = exposure(unit)
    print(f"systemd-analyze security {unit}: {score} {word}; still open: {open_checks}")
    assert score <= LIMIT, (unit, score, open_checks)
    assert word in ("OK", "SAFE")


def test_the_backup_runs_under_it(host: Any) -> None:
    """No network, no capabilities, a read-only system: the job still writes its checked export."""
    before = set(host.file("/var/lib/devpi/backups").listdir())
    run = host.run("systemctl start devpi-backup.service")
    assert run.rc == 0, host.check_output("journalctl --no-pager -n 30 -u devpi-backup.service")
    new = set(host.file("/var/lib/devpi/backups").listdir()) - before
    assert len(new) == 1 and next(iter(new)).startswith("devpi-export-"), new
    # test_backup.py counts the exports it makes: leave the host as it found it.
    host.check_output(f"rm -rf /var/lib/devpi/backups/{next(iter(new))}")
