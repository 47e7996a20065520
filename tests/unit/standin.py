# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The launchctl stand-in (tests/doubles/launchctl) as `launchctl` on PATH for a test, with its
state in the test's own directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

LAUNCHCTL = Path(__file__).resolve().parents[1] / "doubles" / "launchctl"


def use_launchctl_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the stand-in first on PATH (with this Python next to it) and its state under
    tmp_path; return the directory it is in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "launchctl").symlink_to(LAUNCHCTL)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("LAUNCHCTL_STANDIN_STATE", str(tmp_path / "launchd-state"))
    return bin_dir
