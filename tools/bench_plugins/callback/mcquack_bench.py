# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""tools/bench's Ansible callback: records, per task, its action, status and timing (on the
monotonic clock, comparable with the bench's own) and the recap, into $MCQUACK_BENCH_REPORT.

An aggregate callback, enabled only by the bench (ANSIBLE_CALLBACKS_ENABLED=mcquack_bench with
ANSIBLE_CALLBACK_PLUGINS pointing at this directory).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: mcquack_bench
type: aggregate
short_description: Task timings and the recap as JSON, for tools/bench
description:
  - Writes every task's name, action, start and end (monotonic clock) and per-host status,
    and the recap, to the file named by the environment variable C(MCQUACK_BENCH_REPORT).
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mcquack_bench"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report: dict[str, Any] = {
            "playbook_start": time.monotonic(),
            "tasks": [],
            "stats": {},
        }
        self._task: dict[str, Any] | None = None

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._report["playbook_start"] = time.monotonic()

    def _begin(self, task: Any, handler: bool) -> None:
        self._task = {
            "name": task.get_name().strip(),
            "action": task.action,
            "handler": handler,
            "start": time.monotonic(),
            "end": None,
            "hosts": {},
        }
        self._report["tasks"].append(self._task)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._begin(task, False)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._begin(task, True)

    def _record(self, result: Any, status: str) -> None:
        if self._task is None:
            return
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        host = getattr(result, "host", None) or result._host
        entry: dict[str, Any] = {"status": status, "changed": bool(data.get("changed", False))}
        items = data.get("results")
        if isinstance(items, list):
            entry["items"] = len(items)
            entry["items_skipped"] = sum(
                1 for item in items if isinstance(item, dict) and item.get("skipped")
            )
        self._task["hosts"][host.get_name()] = entry
        self._task["end"] = time.monotonic()

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._report["stats_time"] = time.monotonic()
        self._report["stats"] = {h: stats.summarize(h) for h in sorted(stats.processed)}
        with open(os.environ["MCQUACK_BENCH_REPORT"], "w") as out:
            json.dump(self._report, out)
