# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The tail every mcquack.devpi module that talks to devpi-server shares: run, turn a
DevpiError into fail_json, keep the diff only in diff mode, exit with the result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import (
    MODULE_KEY,
    DevpiError,
)

Run = Callable[[dict[str, Any], bool], dict[str, Any]]


def run_module(module: Any, run: Run) -> None:
    """Run ``run(module.params, module.check_mode)`` and exit the AnsibleModule with its result
    (the params also hold the module itself, for connect()'s identity check).

    A DevpiError ends the run with ``fail_json(msg=...)``. The result's ``diff`` is dropped
    unless Ansible runs in diff mode; its ``warnings`` (a list of strings) become module
    warnings. Each module builds its own AnsibleModule (its argument_spec stays in its main()).
    """
    try:
        result = run({**module.params, MODULE_KEY: module}, module.check_mode)
    except DevpiError as e:
        module.fail_json(msg=str(e))
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
