# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.to_plist filter."""

from __future__ import annotations

import plistlib

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mcquack.devpi.plugins.filter.to_plist import FilterModule, to_plist


def test_round_trips_through_plistlib_with_types() -> None:
    job = {
        "Label": "org.example.job",
        "ProgramArguments": ["/bin/echo", "a & <b>"],
        "RunAtLoad": True,
        "ThrottleInterval": 10,
        "Nice": 0.5,
        "SoftResourceLimits": {"NumberOfFiles": 4096},
    }
    text = to_plist(job)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert plistlib.loads(text.encode()) == job
    assert "<true/>" in text
    assert "<integer>10</integer>" in text


def test_keys_are_sorted_so_output_is_stable() -> None:
    assert to_plist({"b": "1", "a": "2"}) == to_plist({"a": "2", "b": "1"})
    text = to_plist({"b": "1", "a": "2"})
    assert text.index("<key>a</key>") < text.index("<key>b</key>")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["not", "a", "mapping"], "expects a mapping"),
        ({"Label": None}, "top level.Label is NoneType"),
        ({"Env": {1: "x"}}, "key 1 at top level.Env is not a string"),
    ],
)
def test_rejects_what_a_plist_cannot_hold(value: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        to_plist(value)


def test_is_registered_as_a_filter() -> None:
    assert FilterModule().filters()["to_plist"] is to_plist
