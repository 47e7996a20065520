# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""What every part of the bench shares: the checkout's paths, timings, the error and the log."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTHOST = ROOT / "tests" / "testhost" / "testhost.py"
PLAYBOOK = ROOT / "playbooks" / "devpi.yml"
PREPARE = ROOT / "molecule" / "resources" / "prepare.yml"
DEFAULTS = ROOT / "roles" / "devpi" / "defaults" / "main.yml"
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_TEMPLATE = ROOT / "tools" / "benchmarks.md.j2"
# The Ansible callback that records every task's timing (tools/bench_plugins/callback).
CALLBACK_DIR = ROOT / "tools" / "bench_plugins" / "callback"
# The test-host settings every scenario and the demo use (trust for this network's proxy).
TESTHOST_VARS = ROOT / "molecule" / "resources" / "vars" / "testhost.yml"
PORT = 3141
UNIT = "devpi"
RSS_AFTER = 60.0  # seconds after a start at which RSS is read
POLL_INTERVAL = 0.1  # the upgrade's client loop
START_POLL_INTERVAL = 0.05
START_TIMEOUT = 120.0
PLAYBOOK_TIMEOUT = 1800.0

# The test settings of tools/demo and molecule/default, reachable from this machine.
# On top of TESTHOST_VARS: devpi reachable from this machine (the role's default is loopback).
BASE_VARS: dict[str, Any] = {"devpi_listen_host": "0.0.0.0"}


class BenchError(Exception):
    """A failure with a message for the person running the bench."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def role_default(name: str) -> str:
    """The value of `name` in the devpi role's defaults (the pins)."""
    match = re.search(rf'^{name}:\s*"?([^"\s#]+)', DEFAULTS.read_text(), re.MULTILINE)
    if not match:
        raise BenchError(f"{name} not found in {DEFAULTS}")
    return match.group(1)
