# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.drift filter."""

from __future__ import annotations

from ansible_collections.mcquack.devpi.plugins.filter.drift import FilterModule, drift

PROBED = {
    "/srv/app": {"exists": True, "type": "directory", "mode": "0750", "owner": "app"},
    "/srv/app/venv": {
        "exists": True,
        "type": "link",
        "mode": "0777",
        "owner": "app",
        "link_target": "/srv/app/venvs/1",
    },
    "/srv/app/app.yml": {
        "exists": True,
        "type": "file",
        "mode": "0644",
        "owner": "root",
        "sha1": "abc",
    },
    "/srv/app/gone": {"exists": False},
}


def test_nothing_differs_when_every_expected_attribute_matches() -> None:
    expected = {
        "/srv/app": {"type": "directory", "mode": "0750", "owner": "app"},
        "/srv/app/venv": {"type": "link", "link_target": "/srv/app/venvs/1"},
        "/srv/app/app.yml": {},
    }
    assert drift(expected, PROBED) == []


def test_each_difference_is_one_readable_line() -> None:
    expected = {
        "/srv/app/app.yml": {"mode": "0640", "owner": "app", "sha1": "abc"},
        "/srv/app/venv": {"link_target": "/srv/app/venvs/2"},
        "/srv/app/gone": {"type": "file"},
        "/srv/app/never-probed": {},
    }
    assert drift(expected, PROBED) == [
        "/srv/app/app.yml: mode is 0644, expected 0640",
        "/srv/app/app.yml: owner is root, expected app",
        "/srv/app/venv: link_target is /srv/app/venvs/1, expected /srv/app/venvs/2",
        "/srv/app/gone: missing",
        "/srv/app/never-probed: missing",
    ]


def test_is_registered_as_a_filter() -> None:
    assert FilterModule().filters()["drift"] is drift


def test_a_redacted_path_names_a_differing_sha1_without_the_values() -> None:
    probed = {
        "/srv/app/secret": {"exists": True, "type": "file", "mode": "0600", "sha1": "have-sha1"}
    }
    expected = {"/srv/app/secret": {"mode": "0600", "sha1": "want-sha1"}}
    assert drift(expected, probed, redacted=["/srv/app/secret"]) == [
        "/srv/app/secret: content differs from the one declared"
    ]
    assert drift(expected, probed) == ["/srv/app/secret: sha1 is have-sha1, expected want-sha1"]
