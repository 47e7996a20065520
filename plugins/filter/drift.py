# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.drift filter: how the probed state differs from the expected one."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

DOCUMENTATION = r"""
name: drift
author: mcquack.devpi developers (@mcquack)
version_added: 0.1.0
short_description: List how probed paths differ from what is expected
description:
  - Compares a mapping of path to expected attributes (C(type), C(mode), C(owner), C(sha1),
    C(link_target); an empty mapping means "exists") with the C(paths) result of
    M(mcquack.devpi.devpi_probe), and returns one readable line per difference.
  - An empty list means everything is in place.
options:
  _input:
    description: Expected attributes per path.
    type: dict
    required: true
  probed:
    description: The C(paths) result of M(mcquack.devpi.devpi_probe).
    type: dict
    required: true
  redacted:
    description: Paths whose differing C(sha1) is reported without the values (a secret's file).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show what differs
  ansible.builtin.debug:
    msg: "{{ {'/etc/app.conf': {'mode': '0644', 'sha1': wanted_sha1}} | mcquack.devpi.drift(state.paths) }}"
"""

RETURN = r"""
_value:
  description: "One line per difference, for example C(/etc/app.conf: mode is 0600, expected 0644)."
  type: list
  elements: str
"""


def drift(
    expected: Mapping[str, Mapping[str, Any]],
    probed: Mapping[str, Mapping[str, Any]],
    redacted: Collection[str] = (),
) -> list[str]:
    """Differences between expected and probed path attributes, in the order expected lists them.
    For the paths in redacted (a secret's file) a differing sha1 is named without its values."""
    lines: list[str] = []
    for path, attributes in expected.items():
        actual = probed.get(path) or {"exists": False}
        if not actual.get("exists"):
            lines.append(f"{path}: missing")
            continue
        for key, want in attributes.items():
            have = actual.get(key)
            if have != want and key == "sha1" and path in redacted:
                lines.append(f"{path}: content differs from the one declared")
            elif have != want:
                lines.append(f"{path}: {key} is {have}, expected {want}")
    return lines


class FilterModule:
    """Ansible's entry point for the filters in this file."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"drift": drift}
