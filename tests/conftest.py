# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Make the collection importable as ansible_collections.mcquack.devpi for the unit tests, and
tools/ (the bench package, the devpi test client) as the command and the scenarios see it:
ansible-test runs pytest with its own settings, without pyproject.toml's pythonpath."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / ".cache" / "collections", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
