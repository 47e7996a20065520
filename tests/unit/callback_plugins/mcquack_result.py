# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A stdout callback for the unit tests' ad-hoc runs (tests/unit/adhoc.py): prints, as one JSON
object at the end, every host's last task result in full (diff included), with "failed" set
for a failed or unreachable host. ansible-core ships no JSON stdout callback of its own."""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: mcquack_result
type: stdout
short_description: Every host's task result as JSON, for the collection's unit tests
description:
  - Prints one JSON object, with the key C(hosts) holding each host's last task result in full,
    once the run ends.
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "mcquack_result"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._results: dict[str, dict[str, Any]] = {}

    def _record(self, result: Any, **extra: Any) -> None:
        data = {k: v for k, v in dict(result._result).items() if not k.startswith("_ansible")}
        data.update(extra)
        self._results[result._host.get_name()] = data

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, failed=True, unreachable=True)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        sys.stdout.write(json.dumps({"hosts": self._results}, default=str) + "\n")
        sys.stdout.flush()
