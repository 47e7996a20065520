# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Fixtures of the module_utils tests: the module tests' real devpi-server and module runner."""

from __future__ import annotations

from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    devpi,
    run_module,
)

__all__ = ["devpi", "run_module"]
