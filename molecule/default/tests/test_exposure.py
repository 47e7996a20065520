# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi's unit exposes little: systemd's own scoring of the loaded unit, on the converged host,
is at most 3.0 ("OK"). What still counts against it is listed, with the reason, in the unit
(templates/devpi.service.j2); tests/unit/test_templates.py checks that list and each directive."""

from __future__ import annotations

from typing import Any

LIMIT = 3.0


def test_the_devpi_unit_scores_at_most_3(host: Any, exposure: Any) -> None:
    score, word, open_checks = exposure("devpi.service")
    print(f"systemd-analyze security devpi.service: {score} {word}; still open: {open_checks}")
    assert score <= LIMIT, (score, word, open_checks)
    assert word in ("OK", "SAFE")
    assert host.service("devpi").is_running
