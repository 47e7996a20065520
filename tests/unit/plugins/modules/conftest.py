# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Fixtures of the module tests: a real devpi-server and a runner of the ansible command."""

from __future__ import annotations

from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    devpi,
    run_module,
)

__all__ = ["devpi", "run_module"]
