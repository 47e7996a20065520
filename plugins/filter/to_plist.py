# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.to_plist filter: a mapping as an XML property list (launchd.plist(5))."""

from __future__ import annotations

import plistlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: to_plist
author: mcquack.devpi developers (@mcquack)
version_added: 0.1.0
short_description: Render a mapping as an XML property list
description:
  - Serialises a mapping with Python's plistlib, so strings are escaped and numbers and
    booleans get their plist types (C(<integer>), C(<true/>)) as launchd expects.
  - Keys are sorted, so the same mapping always renders to the same text.
options:
  _input:
    description: The mapping to serialise (a launchd job definition, for example).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write a LaunchAgent
  ansible.builtin.copy:
    content: "{{ {'Label': 'org.example.job', 'ProgramArguments': ['/bin/true']} | mcquack.devpi.to_plist }}"
    dest: ~/Library/LaunchAgents/org.example.job.plist
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The XML property list, ending in a newline.
  type: str
"""

PlistValue = str | bool | int | float | list["PlistValue"] | dict[str, "PlistValue"]


def _plain(value: Any, where: str) -> PlistValue:
    """Turn Ansible's str/dict/list subclasses into plain types plistlib accepts."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        plain: dict[str, PlistValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AnsibleFilterError(f"to_plist: key {key!r} at {where} is not a string")
            plain[str(key)] = _plain(item, f"{where}.{key}")
        return plain
    if isinstance(value, Sequence):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise AnsibleFilterError(
        f"to_plist: {where} is {type(value).__name__}, which a property list cannot hold"
    )


def to_plist(value: Any) -> str:
    """Serialise a mapping as an XML property list."""
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"to_plist expects a mapping, got {type(value).__name__}")
    return plistlib.dumps(_plain(value, "top level"), fmt=plistlib.FMT_XML, sort_keys=True).decode()


class FilterModule:
    """Ansible's entry point for the filters in this file."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"to_plist": to_plist}
