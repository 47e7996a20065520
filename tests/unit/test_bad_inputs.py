# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Every option of the devpi role, given a wrong value, is refused with a message that names it.

The cases are generated from roles/devpi/meta/argument_specs.yml, for every entry point (main,
stop, start, backup): each option, and each suboption, gets a value of the wrong type and a value
outside its choices, where its type and choices allow one; a list of dicts gets an element that
is not a dict; a dict with suboptions gets one it does not know and loses a required one. The
role's own checks (tasks/validate.yml, main only) get values that pass the argument spec and are
still wrong, from INVALID below - the one table a new check adds a row to. An option that no
value can make wrong is listed, with the reason, in NO_WRONG_VALUE; an option in neither place
fails the test, so a new option cannot go unchecked silently.

All of them run in one ansible-playbook process, in a few batches: the argument spec lists every
error at once, one line each naming the option (and, for a suboption, the option it is found in),
so one validate_argument_spec call per entry point checks a wrong value for every option, and a
few more the options with several; validate.yml names every failing check at once, one sentence
each, so one play runs many of its cases together (see batches()). Every batch is the role's
defaults plus its wrong values, and each entry point with its defaults alone must pass.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "devpi"
SPECS: dict[str, Any] = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())[
    "argument_specs"
]
VALIDATE: list[dict[str, Any]] = yaml.safe_load((ROLE / "tasks/validate.yml").read_text())

# A value of each type that the argument spec cannot convert to it. A str takes anything (the
# spec converts numbers, lists and dicts to their text), so only its choices can be wrong.
WRONG_TYPE: dict[str, Any] = {
    "int": "not-a-number",
    "bool": "maybe",
    "float": "not-a-number",
    "dict": ["a list, not a dict"],
    "list": {"a dict": "not a list"},
}
NOT_A_CHOICE = "not-one-of-the-choices"
# What a required suboption is given while a sibling is being made wrong.
GOOD: dict[str, Any] = {"str": "alice/dev", "int": 1, "bool": True, "list": [], "dict": {}}

# The role's own checks (tasks/validate.yml): option -> (wrong value, what else it needs to be
# wrong, the check of validate.yml it trips). Every check of validate.yml has a row here.
INVALID: dict[str, list[tuple[Any, dict[str, Any], str]]] = {
    "devpi_server_version": [("6.x", {}, "devpi_server_version")],
    "devpi_web_version": [("latest", {}, "devpi_web_version")],
    "devpi_uv_executable": [("bin/uv", {}, "devpi_uv_executable")],
    "devpi_python": [("./python3", {}, "devpi_python")],
    "devpi_install_environment": [({"NO-GOOD": "1"}, {}, "devpi_install_environment")],
    "devpi_service_user": [("dev pi", {}, "devpi_service_user")],
    "devpi_base_dir": [("devpi", {}, "absolute paths")],
    "devpi_venv_dir": [("venv", {}, "absolute paths")],
    "devpi_venvs_dir": [("venvs", {}, "absolute paths")],
    "devpi_keep_venvs": [(1, {}, "devpi_keep_venvs")],
    "devpi_server_dir": [("server-dir", {}, "absolute paths")],
    "devpi_config_file": [("devpi-server.yml", {}, "absolute paths")],
    "devpi_secret_file": [("secret", {}, "absolute paths")],
    "devpi_open_files_limit": [(64, {}, "devpi_open_files_limit")],
    "devpi_environment": [({"NO-GOOD": "1"}, {}, "devpi_environment")],
    "devpi_ca_bundle": [("certs.pem", {}, "devpi_ca_bundle")],
    "devpi_listen_host": [
        ("300.1.2.3", {}, "devpi_listen_host"),
        ("local host!", {}, "devpi_listen_host"),
        ("192.0.2.1", {}, "devpi_listen_host on the host"),
    ],
    "devpi_listen_port": [(70000, {}, "devpi_listen_port"), (0, {}, "devpi_listen_port")],
    "devpi_outside_url": [("https://300.1.2.3/", {}, "devpi_outside_url")],
    "devpi_restrict_modify": [
        ("root,,alice", {}, "devpi_restrict_modify"),
        ("alice", {}, "devpi_restrict_modify names root"),
    ],
    "devpi_server_options": [({"restrict-modify": "alice"}, {}, "devpi_server_options")],
    "devpi_root_password": [
        ("two\nlines", {}, "devpi_root_password"),
        ("", {"devpi_indexes": [{"name": "alice/dev"}]}, "root password for users and indexes"),
    ],
    "devpi_users": [
        ([{"email": "alice@example.org"}], {"devpi_root_password": "pw"}, "devpi_users"),
        ([{"name": "al ice"}], {"devpi_root_password": "pw"}, "devpi_users names"),
    ],
    "devpi_indexes": [
        ([{"bases": []}], {"devpi_root_password": "pw"}, "devpi_indexes"),
        ([{"name": "alice"}], {"devpi_root_password": "pw"}, "devpi_indexes names"),
        ([{"name": "root/pypi"}], {"devpi_root_password": "pw"}, "devpi_indexes root/pypi"),
    ],
    "devpi_launchd_label": [("-devpi", {}, "devpi_launchd_label")],
    "devpi_launchd_agents_dir": [("LaunchAgents", {}, "absolute paths")],
    "devpi_launchd_stdout_path": [("out.log", {}, "absolute paths")],
    "devpi_launchd_stderr_path": [("err.log", {}, "absolute paths")],
    "devpi_systemd_unit": [("devpi.service", {}, "devpi_systemd_unit")],
    "devpi_health_timeout": [(0, {}, "devpi_health_timeout")],
    "devpi_primary_url": [
        ("devpi-primary:3141", {}, "devpi_primary_url"),
        (
            "",
            {"devpi_role": "replica", "devpi_shared_secret": "s" * 44},
            "devpi_primary_url for a replica",
        ),
    ],
    "devpi_primary_host": [
        ("not-in-the-inventory", {}, "devpi_primary_host"),
        (
            "",
            {"devpi_role": "replica", "devpi_primary_url": "http://devpi-primary:3141"},
            "the replica's secret",
        ),
    ],
    "devpi_primary_secret_file": [("secret", {}, "absolute paths")],
    "devpi_shared_secret": [("too-short", {}, "devpi_shared_secret")],
    "devpi_replica_sync_timeout": [(0, {}, "devpi_replica_sync_timeout")],
    "devpi_backup_dir": [
        ("backups", {}, "absolute paths"),
        (
            "/var/lib/devpi/server-dir/backups",
            {"devpi_base_dir": "/var/lib/devpi"},
            "devpi_backup_dir",
        ),
    ],
    "devpi_backup_schedule": [({"hour": 24, "minute": 0}, {}, "devpi_backup_schedule")],
    "devpi_backup_keep": [(0, {}, "devpi_backup_keep")],
    "devpi_restore_from": [("devpi-export-1", {}, "devpi_restore_from")],
}

# Options no value can make wrong, and why. Keys: (entry point, option path).
_ONLY_THE_SPEC = (
    "this entry point checks only its argument spec (types and choices); the option's other "
    "checks are the main entry point's validate.yml"
)
_FREE_TEXT = "free text: the role hands it to devpi-server, which stores it as given"
NO_WRONG_VALUE: dict[tuple[str, str], str] = {
    ("main", "devpi_root_pypi.mirror_url"): _FREE_TEXT,
    ("main", "devpi_root_pypi.mirror_web_url_fmt"): _FREE_TEXT,
    ("main", "devpi_root_pypi.title"): _FREE_TEXT,
    ("main", "devpi_root_pypi.description"): _FREE_TEXT,
    ("main", "devpi_users.password"): "any text is a password",
    ("main", "devpi_users.email"): _FREE_TEXT,
    ("main", "devpi_indexes.mirror_url"): _FREE_TEXT,
    **{
        (entry, option): _ONLY_THE_SPEC
        for entry, option in (
            ("stop", "devpi_listen_host"),
            ("stop", "devpi_launchd_label"),
            ("stop", "devpi_systemd_unit"),
            ("start", "devpi_listen_host"),
            ("start", "devpi_launchd_label"),
            ("start", "devpi_launchd_agents_dir"),
            ("start", "devpi_systemd_unit"),
            ("backup", "devpi_base_dir"),
            ("backup", "devpi_backup_dir"),
            ("backup", "devpi_launchd_label"),
            ("backup", "devpi_launchd_agents_dir"),
            ("backup", "devpi_launchd_stderr_path"),
            ("backup", "devpi_systemd_unit"),
        )
    },
}


def wrong_values(spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(kind, value) the argument spec must refuse for an option or suboption."""
    if spec.get("type", "str") in WRONG_TYPE:
        yield "type", WRONG_TYPE[spec.get("type", "str")]
    if spec.get("choices"):
        yield "choice", NOT_A_CHOICE
    if spec.get("type") == "list" and spec.get("elements") in ("dict", "int", "bool"):
        yield "element", [WRONG_TYPE.get(spec["elements"], "not a dict")]


def spec_calls(entry: str) -> list[dict[str, Any]]:
    """The argument-spec batches of one entry point: each a set of wrong values (vars), at
    most one per option, and the cases they hold (id, option path, kind of wrong). An option
    with suboptions gets one value with every suboption wrong at once, and an unknown one; its
    other wrong values (the option itself of the wrong type, a missing required suboption, ...)
    go into the following batches."""

    def good(spec: dict[str, Any]) -> Any:
        return spec["choices"][0] if spec.get("choices") else GOOD[spec.get("type", "str")]

    def case(path: list[str], kind: str) -> dict[str, Any]:
        return {"id": f"{entry}:{'.'.join(path)}:{kind}", "path": path, "kind": kind}

    variants: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {}
    for name, spec in SPECS[entry]["options"].items():
        wrap = (lambda item: [item]) if spec.get("type") == "list" else (lambda item: item)
        mine = variants.setdefault(name, [])
        suboptions: dict[str, Any] = spec.get("options") or {}
        if suboptions:
            required = {sub: good(s) for sub, s in suboptions.items() if s.get("required")}
            item, held = dict(required), []
            later = []
            for sub, subspec in suboptions.items():
                for number, (kind, value) in enumerate(wrong_values(subspec)):
                    if number == 0:
                        item[sub] = value
                        held.append(case([name, sub], kind))
                    else:
                        later.append((wrap({**required, sub: value}), [case([name, sub], kind)]))
                if subspec.get("required"):
                    missing = {k: v for k, v in required.items() if k != sub}
                    later.append((wrap(missing), [case([name, sub], "missing")]))
            item["no_such_option"] = 1
            held.append(case([name, "no_such_option"], "unknown"))
            mine += [(wrap(item), held), *later]
        mine += [(value, [case([name], kind)]) for kind, value in wrong_values(spec)]
    calls = []
    for number in range(max(len(v) for v in variants.values())):
        chosen = {name: v[number] for name, v in variants.items() if len(v) > number}
        calls.append(
            {
                "id": f"{entry}:batch-{number}",
                "entry": entry,
                "vars": {name: value for name, (value, _cases) in chosen.items()},
                "cases": [c for _value, cases in chosen.values() for c in cases],
            }
        )
    # The entry point with nothing wrong.
    calls.append({"id": f"{entry}:defaults", "entry": entry, "vars": {}, "cases": []})
    return calls


def validate_cases() -> Iterator[dict[str, Any]]:
    for name, rows in INVALID.items():
        for number, (value, others, check) in enumerate(rows):
            yield {
                "id": f"main:{name}:invalid-{number}",
                "path": [name],
                "vars": {**others, name: value},
                "check": check,
            }


# Checks that name every option they refuse in one list, so that several cases can share a run.
LISTING_CHECKS = {"absolute paths"}


def batches(cases: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """validate.yml cases grouped so that one run of it tells them apart. A case that needs
    other values to be wrong (a replica's, a declared index) runs alone: those values could
    change what another check finds. The others share a run when no two set the same variable
    or trip the same check (unless the check lists every option it refuses) - validate.yml then
    names each of them, in a sentence of its own, in its single message."""
    groups: list[list[dict[str, Any]]] = []
    for case in cases:
        alone = len(case["vars"]) != 1
        for group in [] if alone else groups:
            if len(group[0]["vars"]) != 1:
                continue
            used = {key for other in group for key in other["vars"]}
            checks = {other["check"] for other in group} - LISTING_CHECKS
            if not used & set(case["vars"]) and case["check"] not in checks:
                group.append(case)
                break
        else:
            groups.append([case])
    return groups


def check_prefixes() -> dict[str, str]:
    """validate.yml's checks by name, each with its message up to the first template."""
    task = next(t for t in VALIDATE if "ansible.builtin.assert" in t)
    return {
        check["name"]: " ".join(str(check["msg"]).split("{{", maxsplit=1)[0].split())
        for check in task["vars"]["__devpi_checks"]
    }


def option_paths(entry: str) -> set[str]:
    paths = set()
    for name, spec in SPECS[entry]["options"].items():
        paths.add(name)
        paths.update(f"{name}.{sub}" for sub in spec.get("options") or {})
    return paths


def playbook(calls: list[dict[str, Any]], groups: list[list[dict[str, Any]]], out: Path) -> str:
    """One run: every argument-spec batch in one loop of validate_argument_spec, then one play
    per group of validate.yml cases (their values as play vars, the failure caught by rescue),
    then what each said written to `out` as JSON."""
    python = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    local = {"hosts": "localhost", "connection": "local"}
    plays: list[dict[str, Any]] = [
        {
            "name": "Gather facts and check the argument-spec batches",
            **local,
            "gather_facts": True,
            "gather_subset": ["min"],
            "vars": python,
            "tasks": [
                {
                    "name": "Check each batch against its entry point's argument spec",
                    "ansible.builtin.validate_argument_spec": {
                        "argument_spec": "{{ item.spec }}",
                        "provided_arguments": "{{ item.vars }}",
                    },
                    "loop": [
                        {"id": c["id"], "spec": SPECS[c["entry"]]["options"], "vars": c["vars"]}
                        for c in calls
                    ],
                    "loop_control": {"label": "{{ item.id }}"},
                    "register": "spec_results",
                    "ignore_errors": True,
                },
                {
                    "name": "Keep what each said",
                    "ansible.builtin.set_fact": {
                        "outcomes": (
                            "{{ dict(spec_results.results | map(attribute='item.id') | zip("
                            "spec_results.results | map(attribute='argument_errors', default=[]))) }}"
                        )
                    },
                },
            ],
        }
    ]
    for number, group in enumerate(groups):
        ids = [case["id"] for case in group]
        plays.append(
            {
                "name": ", ".join(ids),
                **local,
                "gather_facts": False,
                "vars": {
                    **python,
                    "case_ids": ids,
                    **{key: value for case in group for key, value in case["vars"].items()},
                },
                "tasks": [
                    {
                        "name": "Run the role's input checks",
                        "block": [
                            {
                                "name": "Include validate.yml",
                                "ansible.builtin.include_role": {
                                    "name": "mcquack.devpi.devpi",
                                    "tasks_from": "validate",
                                },
                            },
                            {
                                "name": "Note that they passed",
                                "ansible.builtin.set_fact": {
                                    "outcomes": f"{{{{ outcomes | combine({{'validate-{number}': []}}) }}}}"
                                },
                            },
                        ],
                        "rescue": [
                            {
                                "name": "Note what validate.yml said",
                                "ansible.builtin.set_fact": {
                                    "outcomes": (
                                        f"{{{{ outcomes | combine({{'validate-{number}': "
                                        "[ansible_failed_result.msg]}) }}"
                                    )
                                },
                            }
                        ],
                    }
                ],
            }
        )
    plays.append(
        {
            "name": "Write the outcomes",
            **local,
            "gather_facts": False,
            "vars": python,
            "tasks": [
                {
                    "name": "Write them as JSON",
                    "ansible.builtin.copy": {
                        "content": "{{ outcomes | to_json }}",
                        "dest": str(out),
                        "mode": "0600",
                    },
                }
            ],
        }
    )
    return yaml.safe_dump(plays, sort_keys=False, width=1000)


# What the argument spec says for each kind of wrong value (ansible.module_utils.common).
EVIDENCE = {
    "type": "is of type",
    "element": "is of type",
    "choice": "must be one of",
    "missing": "missing required arguments",
    "unknown": "Supported parameters include",
}


def names(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("bad-inputs")
    calls = [call for entry in SPECS for call in spec_calls(entry)]
    cases = list(validate_cases())
    groups = [*batches(cases), [{"id": "main:defaults", "path": [], "vars": {}, "check": ""}]]
    out = directory / "outcomes.json"
    book = directory / "bad_inputs.yml"
    book.write_text(playbook(calls, groups, out))
    started = time.monotonic()
    result = run_playbook(str(book), {})
    seconds = time.monotonic() - started
    assert out.exists(), result.stdout[-3000:] + result.stderr
    said: dict[str, list[str]] = json.loads(out.read_text())
    count = sum(len(call["cases"]) for call in calls) + len(cases)
    print(
        f"\n{count} wrong values in {len(calls)} + {len(groups)} batches, one run: {seconds:.1f} s"
    )
    return {
        "calls": calls,
        "groups": groups,
        "said": said,
        "seconds": seconds,
        "count": count,
    }


def test_nothing_wrong_passes(outcomes: dict[str, Any]) -> None:
    for entry in SPECS:
        assert outcomes["said"][f"{entry}:defaults"] == [], entry
    assert outcomes["said"][f"validate-{len(outcomes['groups']) - 1}"] == []


def test_every_wrong_value_of_the_argument_specs_is_refused_by_name(
    outcomes: dict[str, Any],
) -> None:
    """Each case has an error line of its kind that names the option, and, for a suboption,
    the option it belongs to."""
    for call in outcomes["calls"]:
        errors = [" ".join(e.split()) for e in outcomes["said"][call["id"]]]
        for case in call["cases"]:
            leaf = case["path"][-1]
            lines = [
                line
                for line in errors
                if EVIDENCE[case["kind"]] in line
                and all(names(line, n) for n in case["path"])
                and (case["kind"] not in ("type", "element") or f"'{leaf}'" in line)
            ]
            assert lines, f"{case['id']}: no error names it: {errors}"


def test_every_wrong_value_of_validate_yml_is_refused_by_name(outcomes: dict[str, Any]) -> None:
    """validate.yml's message holds one sentence per failing check: each case's is the one
    starting with its check's words, up to where the next check's begins, and names its option."""
    prefixes = check_prefixes()
    for number, group in enumerate(outcomes["groups"][:-1]):
        said = outcomes["said"][f"validate-{number}"]
        assert said, f"these passed: {[case['id'] for case in group]}"
        message = " ".join(said[0].split())
        for case in group:
            prefix = prefixes[case["check"]]
            assert prefix in message, f"{case['id']}: not the check {case['check']!r}: {message}"
            start = message.index(prefix)
            others = [message.find(p, start + 1) for p in prefixes.values()]
            sentence = message[start : min([i for i in others if i > start] + [len(message)])]
            for name in case["path"]:
                assert names(sentence, name), f"{case['id']}: {sentence!r} does not name {name}"


def test_every_option_of_every_entry_point_is_covered(outcomes: dict[str, Any]) -> None:
    """A case for every option and suboption, or a row in NO_WRONG_VALUE saying why none can
    be wrong - and no such row for an option that has a case."""
    covered = {
        (call["entry"], ".".join(case["path"]))
        for call in outcomes["calls"]
        for case in call["cases"]
    } | {
        ("main", case["path"][0]) for group in outcomes["groups"] for case in group if case["path"]
    }
    for entry in SPECS:
        for path in sorted(option_paths(entry)):
            key = (entry, path)
            if key in NO_WRONG_VALUE:
                assert key not in covered, f"{key} has a wrong value: drop it from NO_WRONG_VALUE"
            else:
                assert key in covered, (
                    f"{entry}: {path} gets no wrong value; add one to INVALID (for a check in "
                    "validate.yml) or say in NO_WRONG_VALUE why none exists"
                )
    stale = [key for key in NO_WRONG_VALUE if key[1] not in option_paths(key[0])]
    assert not stale, f"NO_WRONG_VALUE names options that do not exist: {stale}"


def test_every_check_of_validate_yml_is_tripped() -> None:
    tripped = {check for rows in INVALID.values() for _value, _others, check in rows}
    assert set(check_prefixes()) == tripped
    for name in INVALID:
        assert name in SPECS["main"]["options"], f"INVALID names {name}, not an option of main"


def test_one_run_checks_them_all_quickly(outcomes: dict[str, Any]) -> None:
    """One ansible-playbook process for every case (the time is printed with -s)."""
    assert outcomes["count"] > 100
    assert outcomes["seconds"] < 300
