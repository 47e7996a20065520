# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The tail every mcquack.devpi module that talks to devpi-server shares: build the
AnsibleModule, run, turn a DevpiError into fail_json, keep the diff only in diff mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import DevpiError

Run = Callable[[dict[str, Any], bool], dict[str, Any]]


def run_module(argument_spec: dict[str, Any], run: Run, **module_options: Any) -> None:
    """Run ``run(params, check_mode)`` as a module and exit with its result.

    ``module_options`` go to AnsibleModule (``supports_check_mode`` defaults to true). A
    DevpiError ends the run with ``fail_json(msg=...)``. The result's ``diff`` is dropped unless
    Ansible runs in diff mode; its ``warnings`` (a list of strings) become module warnings.
    """
    module_options.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_options)
    try:
        result = run(module.params, module.check_mode)
    except DevpiError as e:
        module.fail_json(msg=str(e))
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
