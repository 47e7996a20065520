"""Fixtures of the module tests: a real devpi-server and a runner of the ansible command."""

from __future__ import annotations

from devpi_testserver import devpi, run_module

__all__ = ["devpi", "run_module"]
