# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""mcquack.devpi.devpi_index against a real devpi-server, run through the ansible command."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
    RunModule,
    free_port,
)


def login(devpi: DevpiServer, **args: Any) -> dict[str, Any]:
    return {"url": devpi.url, "login_password": devpi.root_password, **args}


def make_user(devpi: DevpiServer, name: str) -> None:
    devpi.root("PUT", f"/{name}", {"password": f"{name}-pw"})


def test_stage_is_created_then_ok_then_changed_with_a_diff(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    make_user(devpi, "ivan")
    devpi.root("PUT", "/ivan/base", {"type": "stage"})
    args = login(devpi, name="ivan/dev", bases=["root/pypi"], acl_upload=["ivan"])

    created = run_module("devpi_index", args, diff=True)
    assert created.changed, created.result
    assert created.result["diff"] == {
        "before": {"state": "absent"},
        "after": {
            "state": "present",
            "type": "stage",
            "bases": ["root/pypi"],
            "acl_upload": ["ivan"],
        },
    }
    index = devpi.index("ivan/dev")
    assert index is not None
    assert (index["type"], index["bases"], index["volatile"]) == ("stage", ["root/pypi"], True)
    assert created.result["index"]["bases"] == ["root/pypi"]

    again = run_module("devpi_index", {**args, "volatile": True})
    assert not again.changed and not again.failed, again.result
    assert not again.warnings, again.warnings
    assert devpi.root_password not in again.stdout + again.stderr

    new = {
        "volatile": False,
        "acl_upload": ["ivan", ":authenticated:"],
        "bases": ["ivan/base", "root/pypi"],
    }
    changed = run_module("devpi_index", {**args, **new}, diff=True)
    assert changed.changed, changed.result
    assert changed.result["diff"] == {
        "before": {
            "state": "present",
            "bases": ["root/pypi"],
            "volatile": True,
            "acl_upload": ["ivan"],
        },
        "after": {
            "state": "present",
            "bases": ["ivan/base", "root/pypi"],
            "volatile": False,
            "acl_upload": ["ivan", ":AUTHENTICATED:"],
        },
    }
    index = devpi.index("ivan/dev")
    assert index is not None
    assert index["bases"] == ["ivan/base", "root/pypi"]
    assert index["volatile"] is False
    assert sorted(index["acl_upload"]) == [":AUTHENTICATED:", "ivan"]

    # the ACL is a set to devpi, the bases are an ordered lookup path
    same_acl = run_module("devpi_index", {**args, **new, "acl_upload": [":AUTHENTICATED:", "ivan"]})
    assert not same_acl.changed, same_acl.result
    reordered = run_module(
        "devpi_index", {**args, **new, "bases": ["root/pypi", "ivan/base"]}, diff=True
    )
    assert reordered.changed
    assert reordered.result["changes"] == {"bases": ["root/pypi", "ivan/base"]}
    assert devpi.index("ivan/dev")["bases"] == ["root/pypi", "ivan/base"]  # type: ignore[index]


def test_check_mode_reports_changes_but_makes_none(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    make_user(devpi, "judy")
    create = login(devpi, name="judy/dev", bases=["root/pypi"])
    created = run_module("devpi_index", create, check=True, diff=True)
    assert created.changed, created.result
    assert devpi.index("judy/dev") is None

    devpi.root("PUT", "/judy/dev", {"type": "stage", "bases": ["root/pypi"]})
    before = devpi.index("judy/dev")
    modify = {**create, "volatile": False, "bases": [], "mirror_whitelist": ["Foo_Bar"]}
    checked = run_module("devpi_index", modify, check=True, diff=True)
    assert checked.changed, checked.result
    assert checked.result["changes"] == {
        "volatile": False,
        "bases": [],
        "mirror_whitelist": ["foo-bar"],
    }
    assert devpi.index("judy/dev") == before

    delete = run_module("devpi_index", login(devpi, name="judy/dev", state="absent"), check=True)
    assert delete.changed
    assert devpi.index("judy/dev") == before


def test_delete_refuses_an_index_with_uploads_unless_forced(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    make_user(devpi, "kate")
    devpi.root("PUT", "/kate/dev", {"type": "stage"})
    devpi.root("PUT", "/kate/empty", {"type": "stage"})
    devpi.upload_wheel("kate/dev", ("kate", "kate-pw"))
    args = login(devpi, name="kate/dev", state="absent")

    refused = run_module("devpi_index", args)
    assert refused.failed
    assert refused.msg.startswith("refusing to delete index kate/dev: it has uploaded packages")
    assert "(tinypkg)" in refused.msg and "force: true" in refused.msg
    assert devpi.index("kate/dev") is not None

    forced = run_module("devpi_index", {**args, "force": True})
    assert forced.changed, forced.result
    assert devpi.index("kate/dev") is None
    assert not run_module("devpi_index", args).changed

    empty = run_module("devpi_index", login(devpi, name="kate/empty", state="absent"))
    assert empty.changed, empty.result
    assert devpi.index("kate/empty") is None


def test_delete_refuses_a_non_volatile_index_or_a_base_of_another(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    make_user(devpi, "liam")
    devpi.root("PUT", "/liam/prod", {"type": "stage", "volatile": False})
    devpi.root("PUT", "/liam/dev", {"type": "stage", "bases": ["liam/prod"]})
    refused = run_module("devpi_index", login(devpi, name="liam/prod", state="absent"))
    assert refused.failed
    assert "it is non-volatile" in refused.msg
    assert "other indexes use it as a base: liam/dev (bases: liam/prod)" in refused.msg

    forced = run_module("devpi_index", login(devpi, name="liam/prod", state="absent", force=True))
    assert forced.changed, forced.result
    assert devpi.index("liam/prod") is None


def test_failures_are_clear(devpi: DevpiServer, run_module: RunModule) -> None:
    make_user(devpi, "mia")
    missing_base = run_module("devpi_index", login(devpi, name="mia/dev", bases=["nobody/none"]))
    assert missing_base.failed
    assert missing_base.msg.startswith("base index 'nobody/none' of mia/dev does not exist")
    assert devpi.index("mia/dev") is None

    no_user = run_module("devpi_index", login(devpi, name="nobody/dev"))
    assert no_user.failed
    assert "the devpi user 'nobody' does not exist" in no_user.msg

    bad_login = run_module("devpi_index", {**login(devpi, name="mia/dev"), "login_password": "x"})
    assert bad_login.failed
    assert bad_login.msg.startswith(f"login as 'root' at {devpi.url} failed (HTTP 401)")

    anonymous = run_module("devpi_index", {"url": devpi.url, "name": "mia/dev"})
    assert anonymous.failed
    assert "HTTP 403" in anonymous.msg and "an anonymous request may not" in anonymous.msg

    devpi.root("PUT", "/mia/dev", {"type": "stage"})
    wrong_type = run_module(
        "devpi_index", login(devpi, name="mia/dev", type="mirror", mirror_url="https://x.test/")
    )
    assert wrong_type.failed
    assert "devpi cannot change an index's type" in wrong_type.msg


def test_server_down_names_the_url(run_module: RunModule) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = run_module("devpi_index", {"url": url, "name": "root/dev", "login_password": "x"})
    assert down.failed
    assert down.msg.startswith(f"cannot reach devpi-server at {url}: ")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dev", "invalid index name 'dev': expected USER/INDEX"),
        ("root/dev/x", "invalid index name 'root/dev/x': expected USER/INDEX"),
        ("root/my index", "invalid index name 'root/my index': 'my index' has characters"),
        ("r:t/dev", "invalid index name 'r:t/dev': 'r:t' has characters"),
    ],
)
def test_invalid_index_names_fail_before_any_request(
    run_module: RunModule, name: str, message: str
) -> None:
    # nothing listens on port 9 of loopback: validation must come first
    run = run_module("devpi_index", {"url": "http://127.0.0.1:9", "name": name})
    assert run.failed
    assert run.msg.startswith(message), run.msg


def test_mirror_index_is_created_and_stage_options_are_refused(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    args = login(
        devpi, name="root/other", type="mirror", mirror_url="https://pypi.example.test/simple/"
    )
    created = run_module("devpi_index", args)
    assert created.changed, created.result
    index = devpi.index("root/other")
    assert index is not None
    assert (index["type"], index["mirror_url"]) == ("mirror", "https://pypi.example.test/simple/")
    assert not run_module("devpi_index", args).changed

    refused = run_module("devpi_index", {**args, "bases": ["root/pypi"]})
    assert refused.failed
    assert refused.msg == "bases cannot be set on an index of type 'mirror'"


# root/pypi as devpi-init creates it (devpi_server/main.py _pypi_ixconfig_default).
DEVPI_INIT_PYPI = {
    "type": "mirror",
    "volatile": False,
    "title": "PyPI",
    "mirror_url": "https://pypi.org/simple/",
    "mirror_web_url_fmt": "https://pypi.org/project/{name}/",
}


def test_mirror_options_change_in_place_with_check_mode_and_diff(
    devpi: DevpiServer, run_module: RunModule
) -> None:
    devpi.root("PUT", "/root/pypi-like", DEVPI_INIT_PYPI)
    args = login(
        devpi,
        name="root/pypi-like",
        type="mirror",
        mirror_no_project_list=True,
        mirror_cache_expiry=3600,
        title="PyPI",
    )

    checked = run_module("devpi_index", args, check=True, diff=True)
    assert checked.changed, checked.result
    assert checked.result["changes"] == {
        "mirror_no_project_list": True,
        "mirror_cache_expiry": 3600,
    }
    assert checked.result["diff"]["before"]["mirror_no_project_list"] is None
    assert checked.result["diff"]["after"]["mirror_no_project_list"] is True
    index = devpi.index("root/pypi-like")
    assert index is not None and "mirror_no_project_list" not in index

    changed = run_module("devpi_index", args, diff=True)
    assert changed.changed, changed.result
    index = devpi.index("root/pypi-like")
    assert index is not None
    assert (index["mirror_no_project_list"], index["mirror_cache_expiry"]) == (True, 3600)
    # The PATCH kept what the task does not name.
    assert (index["mirror_url"], index["volatile"]) == ("https://pypi.org/simple/", False)

    assert not run_module("devpi_index", args).changed
    # Unset means false to devpi-server: asking for false on an index without it is no change.
    devpi.root("PUT", "/root/pypi-fresh", DEVPI_INIT_PYPI)
    unset = run_module(
        "devpi_index", login(devpi, name="root/pypi-fresh", mirror_no_project_list=False)
    )
    assert not unset.changed, unset.result

    back = run_module("devpi_index", {**args, "mirror_no_project_list": "no"})
    assert back.changed and back.result["changes"] == {"mirror_no_project_list": False}
    index = devpi.index("root/pypi-like")
    assert index is not None and index["mirror_no_project_list"] is False


def test_mirror_options_are_refused_on_a_stage(devpi: DevpiServer, run_module: RunModule) -> None:
    make_user(devpi, "olga")
    run = run_module("devpi_index", login(devpi, name="olga/dev", mirror_no_project_list=True))
    assert run.failed
    assert run.msg == "mirror_no_project_list cannot be set on an index of type 'stage'"
