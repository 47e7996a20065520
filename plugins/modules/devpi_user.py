# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_user module: a devpi-server user, over devpi's HTTP API."""

from __future__ import annotations

DOCUMENTATION = r"""
module: devpi_user
short_description: Manage a user of a devpi-server
version_added: 0.1.0
author: mcquack.devpi developers (@mcquack)
description:
  - Creates, updates or deletes a user of a running devpi-server through its HTTP API, the way
    C(devpi user) does, without devpi-client on the managed host.
  - A password is set when the user is created. On an existing user it is changed only when it
    no longer logs in (checked with C(POST /+login)), so re-runs report no change.
  - Deleting a user deletes all of its indexes. The module refuses when one of them has uploaded
    release files or documentation, is non-volatile, or is a base of another user's index,
    unless O(force=true).
  - Python standard library only; runs wherever devpi-server's URL is reachable.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcquack.devpi.server
  - mcquack.devpi.server.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows O(state), O(email) (when given) and whether the password changes.
  platform:
    platforms: posix
options:
  name:
    description: The user name. Letters, digits and C(-), C(.), C(@), C(_).
    type: str
    required: true
  password:
    description:
      - The user's password. Required to create a user.
      - On an existing user the password is changed only if it does not log in any more.
    type: str
  email:
    description:
      - The user's email address. An empty string removes it. Left alone when omitted.
    type: str
  state:
    description: Whether the user should exist.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), delete the user even if one of its indexes has uploaded packages,
        is non-volatile (it is made volatile first) or is used as a base by another index.
    type: bool
    default: false
notes:
  - The server's answers are compared with what the task asks for, so a run with nothing to do
    changes nothing and reports C(ok).
seealso:
  - module: mcquack.devpi.devpi_index
  - name: devpi documentation
    description: Users, indexes and their options, and the HTTP API devpi-client speaks.
    link: https://doc.devpi.net
"""

EXAMPLES = r"""
- name: A user for the team's uploads
  mcquack.devpi.devpi_user:
    name: alice
    password: "{{ alice_devpi_password }}"
    email: alice@example.org
    login_password: "{{ devpi_root_password }}"
  no_log: true

- name: Remove a user that has only empty, volatile indexes
  mcquack.devpi.devpi_user:
    name: bob
    state: absent
    url: https://devpi.example.org
    login_password: "{{ devpi_root_password }}"

- name: Remove a user together with everything uploaded to its indexes
  mcquack.devpi.devpi_user:
    name: carol
    state: absent
    force: true
    login_password: "{{ devpi_root_password }}"
"""

RETURN = r"""
user:
  description:
    - The user as the server reports it after the run (predicted in check mode).
    - Empty when the user does not exist.
  returned: always
  type: dict
  contains:
    username:
      description: The user name.
      type: str
      sample: alice
    email:
      description: The email address, if one is set.
      type: str
      sample: alice@example.org
    indexes:
      description: Names of the user's indexes, without the user part.
      type: list
      elements: str
      sample: [dev]
  sample:
    username: alice
    email: alice@example.org
    indexes: [dev]
deleted_indexes:
  description: Indexes deleted together with the user.
  returned: when the user was deleted
  type: list
  elements: str
  sample: [alice/dev]
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import (  # noqa: E402
    DevpiClient,
    DevpiError,
    common_argument_spec,
    connect,
    validate_name,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_module import run_module  # noqa: E402

_PASSWORD_SET = "********"
_PASSWORD_NEW = "******** (new)"


def _view(userconfig: dict[str, Any] | None) -> dict[str, Any]:
    if not userconfig:
        return {}
    view: dict[str, Any] = {"username": userconfig.get("username")}
    if userconfig.get("email"):
        view["email"] = userconfig["email"]
    view["indexes"] = sorted(userconfig.get("indexes") or {})
    return view


def ensure_present(client: DevpiClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name: str = params["name"]
    email: str | None = params["email"]
    password: str | None = params["password"]
    current = client.get_user(name)
    before: dict[str, Any] = {"state": "absent" if current is None else "present"}
    after: dict[str, Any] = {"state": "present"}

    if current is None:
        if password is None:
            raise DevpiError(f"password is required to create the devpi user {name!r}")
        body: dict[str, Any] = {"password": password}
        if email:
            body["email"] = email
            after["email"] = email
        after["password"] = _PASSWORD_NEW
        user: dict[str, Any] = {"username": name, "email": email or None, "indexes": {}}
        if not check_mode:
            _status, payload = client.request("PUT", (name,), body)
            user = payload.get("result") or user
        return {"changed": True, "user": _view(user), "diff": {"before": before, "after": after}}

    changes: dict[str, Any] = {}
    if email is not None:
        before["email"] = current.get("email") or ""
        after["email"] = email
        if (current.get("email") or "") != email:
            changes["email"] = email
    if password is not None:
        before["password"] = _PASSWORD_SET
        after["password"] = _PASSWORD_SET
        if not client.password_works(name, password):
            changes["password"] = password
            after["password"] = _PASSWORD_NEW
    user = dict(current)
    if changes:
        if not check_mode:
            client.request("PATCH", (name,), changes)
            user = client.get_user(name) or user
        elif "email" in changes:
            user["email"] = email
    return {
        "changed": bool(changes),
        "user": _view(user),
        "diff": {"before": before, "after": after},
    }


def ensure_absent(client: DevpiClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name: str = params["name"]
    current = client.get_user(name)
    if current is None:
        return {"changed": False, "user": {}, "diff": {"before": {}, "after": {}}}
    if name == "root":
        raise DevpiError("refusing to delete the devpi user 'root': the server needs it")

    indexes: dict[str, dict[str, Any]] = current.get("indexes") or {}
    names = [f"{name}/{index}" for index in sorted(indexes)]
    problems = []
    non_volatile = [index for index in sorted(indexes) if not indexes[index].get("volatile")]
    for index in sorted(indexes):
        if indexes[index].get("type") == "mirror":
            continue
        uploads = client.uploaded_projects(name, index)
        if uploads:
            problems.append(f"index {name}/{index} has uploaded packages ({', '.join(uploads)})")
    if non_volatile:
        problems.append(
            "non-volatile indexes, which devpi-server refuses to delete: "
            + ", ".join(f"{name}/{index}" for index in non_volatile)
        )
    dependents = client.dependent_indexes(names) if names else []
    if dependents:
        problems.append("other indexes use its indexes as bases: " + ", ".join(dependents))
    if problems and not params["force"]:
        raise DevpiError(
            f"refusing to delete the devpi user {name!r}: "
            + "; ".join(problems)
            + ". Set force: true to delete the user with all of its indexes and their packages"
        )
    if not check_mode:
        for index in non_volatile:
            client.patch_index(name, index, {"volatile": True})
        client.request("DELETE", (name,))
    return {
        "changed": True,
        "user": {},
        "deleted_indexes": names,
        "diff": {"before": {"state": "present"}, "after": {"state": "absent"}},
    }


def run(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    validate_name(params["name"], "user name")
    client = connect(params)
    if params["state"] == "absent":
        return ensure_absent(client, params, check_mode)
    return ensure_present(client, params, check_mode)


def main() -> None:
    argument_spec = common_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        password={"type": "str", "no_log": True},
        email={"type": "str"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        force={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == "__main__":
    main()
