# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A fresh devpi serves its first install at once (runs after test_default.py).

Three times: stop devpi, move its server-dir away, converge (devpi-init, start, root/pypi as
the role declares it, users and indexes), and right after the converge returns install a
package with dependencies through root/pypi and through eblume/dev: no sleep, no retry.
"""

from __future__ import annotations

from typing import Any

import pytest

BASE = "/var/lib/devpi"


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_fresh_server_dir_serves_the_first_install_at_once(
    host: Any, devpi: Any, converge: Any, attempt: int
) -> None:
    host.check_output(
        f"systemctl stop devpi && rm -rf {BASE}/server-dir.before-fresh "
        f"&& mv {BASE}/server-dir {BASE}/server-dir.before-fresh"
    )
    run = converge()
    assert run.returncode == 0, run.tail()
    assert host.file(f"{BASE}/server-dir/.serverversion").exists
    for index in ("root/pypi", "eblume/dev"):
        result = devpi.pip_install(index, "requests", venv=f"/var/tmp/first-install-{attempt}")
        assert result.rc == 0, f"attempt {attempt}, {index}: {result.stdout}\n{result.stderr}"
        assert "Successfully installed" in result.stdout and "requests" in result.stdout
    host.check_output(f"rm -rf {BASE}/server-dir.before-fresh")
