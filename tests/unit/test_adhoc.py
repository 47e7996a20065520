# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""tests/unit/adhoc.py and its callback read a module's whole result from an ad-hoc run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.mcquack.devpi.tests.unit.adhoc import ADHOC_ENV, adhoc_result

ROOT = Path(__file__).resolve().parents[2]


def adhoc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **ADHOC_ENV}
    return subprocess.run(["ansible", "localhost", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_success_a_failure_and_a_diff_are_read(tmp_path: Path) -> None:
    ok = adhoc("-m", "ansible.builtin.debug", "-a", "msg=hello")
    assert adhoc_result(ok.stdout)["msg"] == "hello"
    failed = adhoc("-m", "ansible.builtin.fail", "-a", "msg=boom")
    result = adhoc_result(failed.stdout)
    assert result["failed"] is True and result["msg"] == "boom"
    target = tmp_path / "file"
    diff = adhoc(
        "-m", "ansible.builtin.copy", "-a", f"content=x dest={target}", "--check", "--diff"
    )
    changed = adhoc_result(diff.stdout)
    assert changed["changed"] is True and changed["diff"], changed


def test_no_result_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no result line"):
        adhoc_result("ERROR! something else\n")
