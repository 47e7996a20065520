# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Fixtures of the module tests: a real devpi-server and a runner of the ansible command."""

from __future__ import annotations

import pytest
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    devpi,
    run_module,
)

__all__ = ["devpi", "run_module"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make the base temporary directory once, in the process that runs the session.

    ansible-test runs every test in a fork of that process (its ansible_forked plugin). A fork
    that makes the base directory first deletes it if it exists (pytest does that for a given
    --basetemp, which pytest-xdist gives each worker), and a fork's result never reaches the
    parent: so each test would delete what the tests before it left, servers' files included.
    """
    factory = session.config._tmp_path_factory  # type: ignore[attr-defined]  # pylint: disable=protected-access
    factory.getbasetemp()
