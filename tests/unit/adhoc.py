# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Read the result of an ad-hoc `ansible HOST -m MODULE` run, through the unit tests' own stdout
callback (tests/unit/callback_plugins/mcquack_result.py), so that no callback from another
collection is needed. Run the command with ADHOC_ENV in its environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The collections path this module was imported from (.../ansible_collections/mcquack/devpi/
# tests/unit/adhoc.py): the checkout's .cache/collections, or where ansible-test put the copy.
COLLECTIONS_PATH = str(Path(__file__).absolute().parents[5])

ADHOC_ENV = {
    "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
    "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "callback_plugins"),
    "ANSIBLE_STDOUT_CALLBACK": "mcquack_result",
    "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    "ANSIBLE_NOCOLOR": "1",
}


def adhoc_result(stdout: str, host: str = "localhost") -> dict[str, Any]:
    """The host's result, from the callback's JSON (the last line that holds it)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"hosts": '):
            hosts = json.loads(line)["hosts"]
            if host not in hosts:
                raise ValueError(f"no result for {host} in:\n{stdout}")
            result: dict[str, Any] = hosts[host]
            return result
    raise ValueError(f"no result line for {host} in:\n{stdout}")
