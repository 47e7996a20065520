# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Make the collection importable as ansible_collections.mcquack.devpi for the unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[1] / ".cache" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
