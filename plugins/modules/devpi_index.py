# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_index module: a devpi-server index, over devpi's HTTP API."""

from __future__ import annotations

DOCUMENTATION = r"""
module: devpi_index
short_description: Manage an index of a devpi-server
version_added: 0.1.0
author: mcquack.devpi developers (@mcquack)
description:
  - Creates, updates or deletes an index (a C(stage) for uploads, or a C(mirror) of another
    package index) of a running devpi-server through its HTTP API, the way C(devpi index) does,
    without devpi-client on the managed host.
  - Only the options a task gives are managed; devpi's defaults apply to the others when the
    index is created, and they are left alone afterwards.
  - Deleting an index that has uploaded release files or documentation, that is non-volatile,
    or that another index uses as a base is refused unless O(force=true).
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
    details: The diff shows O(state) and the options the task gives.
  platform:
    platforms: posix
options:
  name:
    description:
      - The index as C(USER/INDEX), for example C(alice/dev). The user must exist.
      - Both parts take letters, digits and C(-), C(.), C(@), C(_).
    type: str
    required: true
  type:
    description:
      - C(stage) holds uploaded packages and inherits from O(bases); C(mirror) caches another
        index such as PyPI.
      - Used when the index is created (then it defaults to C(stage)); devpi cannot change the
        type of an existing index, so a different type fails.
    type: str
    choices: [stage, mirror]
  bases:
    description:
      - Indexes (C(USER/INDEX)) this stage inherits packages from, in lookup order.
      - Every base must exist. An empty list removes all bases.
      - Only for O(type=stage).
    type: list
    elements: str
  volatile:
    description:
      - Whether uploaded versions may be overwritten or deleted. devpi-server defaults to
        C(true) for new indexes.
    type: bool
  acl_upload:
    description:
      - Users allowed to upload to the stage. C(:ANONYMOUS:) and C(:AUTHENTICATED:) are
        special. Order does not matter. devpi defaults to the index's owner.
      - Only for O(type=stage).
    type: list
    elements: str
  mirror_whitelist:
    description:
      - Projects (or C(*) for all) that may be served from mirror bases even though this stage
        has its own releases of them. Names are compared PEP 503 normalised; order does not
        matter.
      - Only for O(type=stage).
    type: list
    elements: str
  mirror_url:
    description:
      - The simple index a mirror caches, for example C(https://pypi.org/simple/).
      - Required to create a mirror; only for O(type=mirror).
    type: str
  mirror_web_url_fmt:
    description:
      - The web page of a project on the mirrored site, with C({name}) for the project name, for
        example C(https://pypi.org/project/{name}/). devpi-web links to it.
      - Only for O(type=mirror).
    type: str
  mirror_cache_expiry:
    description:
      - Seconds devpi-server serves a mirrored project's cached page before it asks the
        upstream again. devpi-server's C(--mirror-cache-expiry) (1800) applies when unset.
      - Only for O(type=mirror).
    type: int
  mirror_no_project_list:
    description:
      - Do not fetch the upstream's list of all projects. devpi then learns project names one
        request at a time; a lookup never waits for, or is answered "not found" from, a list
        that is still loading, and devpi-web indexes only the projects that were asked for.
        devpi-server treats an unset value as C(false).
      - Only for O(type=mirror).
    type: bool
  mirror_use_external_urls:
    description:
      - Let clients download release files straight from the upstream's URLs instead of
        through (and into) devpi's cache. Unset means C(false).
      - Only for O(type=mirror).
    type: bool
  mirror_ignore_serial_header:
    description:
      - Accept upstream answers without PyPI's C(X-PYPI-LAST-SERIAL) header, for upstreams
        that are not PyPI. Unset means C(false).
      - Only for O(type=mirror).
    type: bool
  title:
    description: A short title devpi-web shows for the index.
    type: str
  description:
    description: A longer description devpi-web shows for the index.
    type: str
  state:
    description: Whether the index should exist.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), delete the index even if it has uploaded packages (they are
        deleted with it), is non-volatile (it is made volatile first) or is a base of another
        index.
    type: bool
    default: false
notes:
  - The order of O(bases) matters to devpi and is compared as given; O(acl_upload) and
    O(mirror_whitelist) are compared as sets.
seealso:
  - module: mcquack.devpi.devpi_user
  - name: devpi documentation
    description: Users, indexes and their options, and the HTTP API devpi-client speaks.
    link: https://doc.devpi.net
"""

EXAMPLES = r"""
- name: A development stage on top of the PyPI mirror
  mcquack.devpi.devpi_index:
    name: alice/dev
    bases: [root/pypi]
    volatile: true
    acl_upload: [alice]
    login_password: "{{ devpi_root_password }}"

- name: A release stage nobody can overwrite, inheriting from dev
  mcquack.devpi.devpi_index:
    name: alice/release
    bases: [alice/dev]
    volatile: false
    mirror_whitelist: ["*"]
    login_user: alice
    login_password: "{{ alice_devpi_password }}"

- name: A mirror of another package index
  mcquack.devpi.devpi_index:
    name: root/internal-mirror
    type: mirror
    mirror_url: https://pypi.example.org/simple/
    login_password: "{{ devpi_root_password }}"

- name: The PyPI mirror without PyPI's list of every project, refreshed hourly
  mcquack.devpi.devpi_index:
    name: root/pypi
    type: mirror
    mirror_url: https://pypi.org/simple/
    mirror_no_project_list: true
    mirror_cache_expiry: 3600
    login_password: "{{ devpi_root_password }}"

- name: Delete a stage and everything uploaded to it
  mcquack.devpi.devpi_index:
    name: alice/scratch
    state: absent
    force: true
    login_password: "{{ devpi_root_password }}"
"""

RETURN = r"""
index:
  description:
    - The index configuration as the server reports it after the run (predicted in check
      mode), without its project list. Keys depend on the index type and server plugins.
    - Empty when the index does not exist.
  returned: always
  type: dict
  sample:
    type: stage
    bases: [root/pypi]
    volatile: true
    acl_upload: [alice]
    acl_toxresult_upload: [":ANONYMOUS:"]
    mirror_whitelist: []
    mirror_whitelist_inheritance: intersection
changes:
  description: The options that were (or in check mode would be) changed, with their new values.
  returned: when the index existed and state=present
  type: dict
  sample:
    volatile: false
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import (  # noqa: E402
    INDEX_OPTION_TYPES,
    MIRROR_ONLY_OPTIONS,
    STAGE_ONLY_OPTIONS,
    DevpiClient,
    DevpiError,
    common_argument_spec,
    connect,
    desired_index_options,
    index_changes,
    split_index_name,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_module import run_module  # noqa: E402

FIELDS = tuple(INDEX_OPTION_TYPES)


def desired_fields(params: dict[str, Any]) -> dict[str, Any]:
    """The options the task gives, normalised the way devpi-server stores them."""
    return desired_index_options({field: params.get(field) for field in FIELDS})


def check_type_options(index_type: str, desired: dict[str, Any]) -> None:
    wrong = STAGE_ONLY_OPTIONS if index_type == "mirror" else MIRROR_ONLY_OPTIONS
    given = [field for field in wrong if field in desired]
    if given:
        raise DevpiError(f"{', '.join(given)} cannot be set on an index of type {index_type!r}")


def check_bases(client: DevpiClient, name: str, bases: list[str]) -> None:
    missing = client.missing_bases(bases)
    if missing:
        raise DevpiError(
            f"base index {', '.join(repr(b) for b in missing)} of {name} does not exist; "
            "create it first or fix bases"
        )


def ensure_present(client: DevpiClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name: str = params["name"]
    user, index = split_index_name(name)
    desired = desired_fields(params)
    current = client.get_index(user, index)

    if current is None:
        desired.setdefault("type", "stage")
        check_type_options(desired["type"], desired)
        if desired["type"] == "mirror" and "mirror_url" not in desired:
            raise DevpiError(f"mirror_url is required to create the mirror index {name}")
        if client.get_user(user) is None:
            raise DevpiError(
                f"the devpi user {user!r} does not exist, so its index {name} cannot be "
                "created; create the user first (mcquack.devpi.devpi_user)"
            )
        if desired.get("bases"):
            check_bases(client, name, desired["bases"])
        result = dict(desired)
        if not check_mode:
            _status, payload = client.request("PUT", (user, index), desired)
            result = payload.get("result") or result
        result.pop("projects", None)
        return {
            "changed": True,
            "index": result,
            "diff": {"before": {"state": "absent"}, "after": {"state": "present", **desired}},
        }

    current_type = current.get("type", "stage")
    if desired.get("type", current_type) != current_type:
        raise DevpiError(
            f"index {name} is of type {current_type!r}; devpi cannot change an index's type to "
            f"{desired['type']!r} (delete it and create it again)"
        )
    check_type_options(current_type, desired)
    before: dict[str, Any] = {"state": "present"}
    after: dict[str, Any] = {"state": "present"}
    for field, value in desired.items():
        before[field] = current.get(field)
        after[field] = value
    changes = index_changes(current, desired)
    if changes.get("bases"):
        check_bases(client, name, changes["bases"])
    result = dict(current)
    if changes:
        if check_mode:
            result.update(changes)
        else:
            result = client.patch_index(user, index, changes)
    result.pop("projects", None)
    return {
        "changed": bool(changes),
        "index": result,
        "changes": changes,
        "diff": {"before": before, "after": after},
    }


def ensure_absent(client: DevpiClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name: str = params["name"]
    user, index = split_index_name(name)
    current = client.get_index(user, index)
    if current is None:
        return {"changed": False, "index": {}, "diff": {"before": {}, "after": {}}}

    problems = []
    if current.get("type") != "mirror":
        uploads = client.uploaded_projects(user, index)
        if uploads:
            problems.append(f"it has uploaded packages ({', '.join(uploads)})")
    if not current.get("volatile"):
        problems.append("it is non-volatile, and devpi-server refuses to delete such an index")
    dependents = client.dependent_indexes([name])
    if dependents:
        problems.append("other indexes use it as a base: " + ", ".join(dependents))
    if problems and not params["force"]:
        raise DevpiError(
            f"refusing to delete index {name}: "
            + "; ".join(problems)
            + ". Set force: true to delete it with everything uploaded to it"
        )
    if not check_mode:
        if not current.get("volatile"):
            client.patch_index(user, index, {"volatile": True})
        client.request("DELETE", (user, index))
    return {
        "changed": True,
        "index": {},
        "diff": {"before": {"state": "present"}, "after": {"state": "absent"}},
    }


def run(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    split_index_name(params["name"])
    desired_fields(params)  # validates bases before the first request
    client = connect(params)
    if params["state"] == "absent":
        return ensure_absent(client, params, check_mode)
    return ensure_present(client, params, check_mode)


def main() -> None:
    argument_spec = common_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        type={"type": "str", "choices": ["stage", "mirror"]},
        bases={"type": "list", "elements": "str"},
        volatile={"type": "bool"},
        acl_upload={"type": "list", "elements": "str"},
        mirror_whitelist={"type": "list", "elements": "str"},
        mirror_url={"type": "str"},
        mirror_web_url_fmt={"type": "str"},
        mirror_cache_expiry={"type": "int"},
        mirror_no_project_list={"type": "bool"},
        mirror_use_external_urls={"type": "bool"},
        mirror_ignore_serial_header={"type": "bool"},
        title={"type": "str"},
        description={"type": "str"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        force={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == "__main__":
    main()
