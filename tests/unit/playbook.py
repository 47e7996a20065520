# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Run one of the unit tests' playbooks on the controller with the repository's ansible.cfg."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from ansible_collections.mcquack.devpi.tests.unit.adhoc import COLLECTIONS_PATH

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(
    name: str, extra_vars: dict[str, Any], *options: str
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook tests/unit/<name> against localhost with extra_vars as JSON, and any
    further ansible-playbook options (e.g. "--check", "--diff")."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            str(ROOT / "tests/unit" / name),
            "-e",
            json.dumps(extra_vars),
            *options,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
