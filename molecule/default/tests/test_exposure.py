# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi's unit exposes little: systemd's own scoring of the loaded unit, on the converged host,
is at most 3.0 ("OK"). What still counts against it is listed, with the reason, in the unit
(templates/devpi.service.j2); tests/unit/test_templates.py checks that list and each directive."""

from __future__ import annotations

import json
import re
from typing import Any

LIMIT = 3.0


def exposure(host: Any, unit: str) -> tuple[float, str, list[str]]:
    """`systemd-analyze security` of a loaded unit: its overall exposure, systemd's word for it,
    and the checks that still count against it."""
    text = host.check_output(f"systemd-analyze security --no-pager {unit}")
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+) (\w+)", text)
    assert match, text
    checks = json.loads(
        host.check_output(f"systemd-analyze security --no-pager --json=short {unit}")
    )
    open_checks = [c["name"] for c in checks if not c["set"] and float(c["exposure"] or 0) > 0]
    return float(match.group(1)), match.group(2), open_checks


def test_the_devpi_unit_scores_at_most_3(host: Any) -> None:
    score, word, open_checks = exposure(host, "devpi.service")
    print(f"systemd-analyze security devpi.service: {score} {word}; still open: {open_checks}")
    assert score <= LIMIT, (score, word, open_checks)
    assert word in ("OK", "SAFE")
    assert host.service("devpi").is_running
