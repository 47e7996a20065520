# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The `op` stand-in answers like 1Password CLI v2, and the real onepassword lookup works on it.

The first half drives tests/doubles/op directly: each call the lookup makes, the errors and exit
statuses of the real CLI, and that no secret reaches stderr or the call log. The second half runs
`ansible localhost -m ansible.builtin.debug` with the stand-in first on PATH, so the installed
community.general.onepassword lookup is exercised end to end; those runs start in parallel once
per module to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.adhoc import ADHOC_ENV, adhoc_result

ROOT = Path(__file__).resolve().parents[2]
OP = ROOT / "tests" / "doubles" / "op"

# Fixture values only; nothing here is a real credential.
SECRET = "fixture-root-pw-7d1c"
SA_TOKEN = "ops_fixture-service-account-token"
LOOKUP = "lookup('community.general.onepassword', {term}, field='root password'{extra})"

ERROR_LINE = re.compile(r"^\[ERROR\] \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} ")
NOT_SIGNED_IN = "You are not currently signed in. Please run `op signin --help` for instructions"
OP_ERROR = 1
OUTSIDE_SUBSET = 3


def devpi_item(vault: str = "Private", **extra: Any) -> dict[str, Any]:
    return {
        "vault": vault,
        "title": "devpi",
        "category": "PASSWORD",
        "fields": [{"label": "root password", "type": "CONCEALED", "value": SECRET}],
        **extra,
    }


def fixture_data(signed_in: bool = True, **extra: Any) -> dict[str, Any]:
    return {"signed_in": signed_in, "items": [devpi_item()], **extra}


def base_env() -> dict[str, str]:
    """The test's environment without any 1Password variable a developer may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OP_")}


@dataclass(frozen=True)
class Op:
    """Runs the stand-in with one fixture, one log file and a clean environment."""

    fixture: Path
    log: Path

    def write(self, data: dict[str, Any]) -> None:
        self.fixture.write_text(json.dumps(data), encoding="utf-8")

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {
            **base_env(),
            "OP_STANDIN_ITEMS": str(self.fixture),
            "OP_STANDIN_LOG": str(self.log),
            **env,
        }
        return subprocess.run(
            [str(OP), *args], env=full_env, capture_output=True, text=True, check=False
        )

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def op(tmp_path: Path) -> Op:
    runner = Op(tmp_path / "items.json", tmp_path / "calls.jsonl")
    runner.write(fixture_data())
    return runner


def assert_op_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == OP_ERROR, result
    assert result.stdout == ""
    assert ERROR_LINE.match(result.stderr), result.stderr
    assert message in result.stderr
    assert SECRET not in result.stderr


# --- the stand-in on its own ----------------------------------------------------------------


def test_top_of_file_says_what_it_is() -> None:
    text = OP.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env python\n")
    assert "1Password CLI v2 (`op`), for tests only" in text[:200]
    assert "Subset implemented" in text[:2000]
    assert os.access(OP, os.X_OK)


def test_version_is_2x_and_needs_no_fixture() -> None:
    result = subprocess.run(
        [str(OP), "--version"], env=base_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert re.fullmatch(r"2\.\d+\.\d+\n", result.stdout)
    assert result.stderr == ""


@pytest.mark.parametrize("signed_in", [True, False])
def test_account_list_shows_configured_accounts_signed_in_or_not(op: Op, signed_in: bool) -> None:
    op.write(fixture_data(signed_in=signed_in))
    table = op("account", "list")
    assert table.returncode == 0
    assert table.stdout.split()[:4] == ["URL", "EMAIL", "USER", "ID"]
    assert "my.1password.com" in table.stdout
    listed = json.loads(op("account", "list", "--format=json").stdout)
    assert [a["url"] for a in listed] == ["my.1password.com"]
    assert set(listed[0]) >= {"url", "email", "user_uuid", "account_uuid"}


def test_account_list_is_empty_without_accounts(op: Op) -> None:
    op.write(fixture_data(accounts=[]))
    result = op("account", "list")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert json.loads(op("account", "list", "--format", "json").stdout) == []


def test_account_get_signed_in(op: Op) -> None:
    result = op("account", "get")
    assert result.returncode == 0
    assert "Domain:" in result.stdout
    details = json.loads(op("account", "get", "--format", "json").stdout)
    assert set(details) == {"id", "name", "domain", "type", "state", "created_at"}
    assert op("account", "get", "--account", "my.1password.com").returncode == 0
    assert op("account", "get", "--account", details["id"]).returncode == 0


def test_account_get_signed_out(op: Op) -> None:
    op.write(fixture_data(signed_in=False))
    assert_op_error(op("account", "get"), NOT_SIGNED_IN)


def test_account_get_unknown_account(op: Op) -> None:
    assert_op_error(op("account", "get", "--account", "elsewhere"), "no account found for filter")


def test_whoami_signed_in_and_out(op: Op) -> None:
    result = op("whoami")
    assert result.returncode == 0
    assert re.search(r"^User Type: +HUMAN$", result.stdout, re.MULTILINE)
    op.write(fixture_data(signed_in=False))
    assert_op_error(op("whoami"), "account is not signed in")


def test_whoami_with_a_service_account_token(op: Op) -> None:
    op.write(fixture_data(signed_in=False))
    result = op("whoami", OP_SERVICE_ACCOUNT_TOKEN=SA_TOKEN)
    assert result.returncode == 0
    assert re.search(r"^User Type: +SERVICE_ACCOUNT$", result.stdout, re.MULTILINE)
    assert "Integration ID:" in result.stdout
    assert SA_TOKEN not in result.stdout + result.stderr


def test_item_get_json_is_shaped_like_the_real_cli(op: Op) -> None:
    result = op("item", "get", "devpi", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    item = json.loads(result.stdout)
    assert list(item)[:5] == ["id", "title", "version", "vault", "category"]
    assert re.fullmatch(r"[a-z2-7]{26}", item["id"])
    assert item["title"] == "devpi"
    assert item["vault"]["name"] == "Private"
    assert re.fullmatch(r"[a-z2-7]{26}", item["vault"]["id"])
    assert item["category"] == "PASSWORD"
    assert {"created_at", "updated_at", "last_edited_by"} <= set(item)
    [field] = item["fields"]
    assert field["type"] == "CONCEALED"
    assert field["label"] == "root password"
    assert field["value"] == SECRET
    assert field["reference"] == "op://Private/devpi/root password"
    assert list(field) == ["id", "type", "label", "value", "reference"]


def test_item_get_json_with_purpose_section_and_urls(op: Op) -> None:
    op.write(
        {
            "signed_in": True,
            "items": [
                {
                    "vault": "Private",
                    "title": "Login",
                    "category": "LOGIN",
                    "urls": ["https://devpi.example.com/+login"],
                    "fields": [
                        {"id": "password", "label": "password", "type": "CONCEALED"}
                        | {"purpose": "PASSWORD", "value": SECRET},
                        {"label": "port", "value": "3141", "section": "Server"},
                    ],
                }
            ],
        }
    )
    item = json.loads(op("item", "get", "devpi.example.com", "--format", "json").stdout)
    password, port = item["fields"]
    assert (password["id"], password["purpose"]) == ("password", "PASSWORD")
    assert port["section"]["label"] == "Server"
    assert port["reference"] == "op://Private/Login/Server/port"
    assert item["sections"] == [port["section"]]
    assert item["urls"] == [{"href": "https://devpi.example.com/+login", "primary": True}]


@pytest.mark.parametrize(
    "flags",
    [
        ["--vault=Private"],
        ["--vault", "Private"],
        ["--vault", "private"],
        ["--account", "my", "--vault=Private"],
        ["--account=my.1password.com"],
    ],
)
def test_item_get_with_vault_and_account_flags(op: Op, flags: list[str]) -> None:
    result = op("item", "get", "devpi", "--format", "json", *flags)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fields"][0]["value"] == SECRET


def test_item_get_by_id_and_vault_id(op: Op) -> None:
    item = json.loads(op("item", "get", "devpi", "--format", "json").stdout)
    again = op("item", "get", item["id"], "--vault", item["vault"]["id"], "--format=json")
    assert json.loads(again.stdout) == item


def test_item_get_human_output_hides_concealed_values(op: Op) -> None:
    result = op("item", "get", "devpi")
    assert result.returncode == 0
    assert "Title:" in result.stdout
    assert SECRET not in result.stdout
    assert "--reveal" in result.stdout
    assert SECRET in op("item", "get", "devpi", "--reveal").stdout
    assert json.loads(op("item", "get", "devpi", OP_FORMAT="json").stdout)["title"] == "devpi"


def test_item_get_unknown_item(op: Op) -> None:
    assert_op_error(
        op("item", "get", "nope", "--format", "json"),
        '"nope" isn\'t an item. Specify the item with its UUID, name, or domain.',
    )
    assert_op_error(
        op("item", "get", "nope", "--format", "json", "--vault=Private"),
        '"nope" isn\'t an item in the "Private" vault. Specify the item with its UUID, name',
    )


def test_item_get_unknown_vault(op: Op) -> None:
    assert_op_error(
        op("item", "get", "devpi", "--format", "json", "--vault=Nope"),
        '"Nope" isn\'t a vault in this account. Specify the vault with its ID or name.',
    )


def test_item_get_ambiguous_title(op: Op) -> None:
    op.write({"signed_in": True, "items": [devpi_item("Private"), devpi_item("Shared")]})
    result = op("item", "get", "devpi", "--format", "json")
    assert_op_error(
        result, 'More than one item matches "devpi". Try again and specify the item by its ID:'
    )
    matches = re.findall(r'^\t\* for the item "devpi" in vault (\w+): ([a-z2-7]{26})$',
                         result.stderr, re.MULTILINE)  # fmt: skip
    assert [vault for vault, _item_id in matches] == ["Private", "Shared"]
    chosen = op("item", "get", "devpi", "--format", "json", "--vault", "Shared")
    assert json.loads(chosen.stdout)["vault"]["name"] == "Shared"
    by_id = op("item", "get", matches[0][1], "--format", "json")
    assert json.loads(by_id.stdout)["vault"]["name"] == "Private"


def test_item_get_signed_out(op: Op) -> None:
    op.write(fixture_data(signed_in=False))
    assert_op_error(op("item", "get", "devpi", "--format", "json"), NOT_SIGNED_IN)


def test_item_get_without_any_account(op: Op) -> None:
    op.write(fixture_data(accounts=[]))
    assert_op_error(
        op("item", "get", "devpi", "--format", "json"),
        "No accounts configured for use with 1Password CLI.",
    )


def test_item_get_with_service_account_token_or_connect(op: Op) -> None:
    op.write(fixture_data(signed_in=False))
    with_token = op("item", "get", "devpi", "--format", "json", "--vault=Private",
                    OP_SERVICE_ACCOUNT_TOKEN=SA_TOKEN)  # fmt: skip
    assert json.loads(with_token.stdout)["fields"][0]["value"] == SECRET
    connect = {"OP_CONNECT_HOST": "http://connect.invalid", "OP_CONNECT_TOKEN": SA_TOKEN}
    with_connect = op("item", "get", "devpi", "--format", "json", "--vault=Private", **connect)
    assert json.loads(with_connect.stdout)["title"] == "devpi"


def test_missing_flag_value(op: Op) -> None:
    assert_op_error(op("item", "get", "devpi", "--vault"), "flag needs an argument: --vault")


@pytest.mark.parametrize(
    "args",
    [
        ["signin", "--raw"],
        ["account", "add", "--signin"],
        ["read", "op://Private/devpi/root password"],
        ["item", "get", "devpi", "--otp"],
        ["item", "get", "devpi", "--fields", "label=root password"],
        ["item", "list"],
        ["--version", "--debug"],
        [],
    ],
)
def test_calls_outside_the_subset_are_refused_loudly(op: Op, args: list[str]) -> None:
    result = op(*args)
    assert result.returncode == OUTSIDE_SUBSET
    assert result.stdout == ""
    assert result.stderr.startswith("op stand-in: ")


def test_broken_or_missing_fixture_is_a_stand_in_error(op: Op) -> None:
    op.fixture.write_text("{not json", encoding="utf-8")
    broken = op("item", "get", "devpi")
    assert broken.returncode == OUTSIDE_SUBSET
    assert "cannot read the fixture" in broken.stderr
    op.write({"items": [{"vault": "Private", "title": "devpi", "fields": [{"value": SECRET}]}]})
    unlabelled = op("item", "get", "devpi")
    assert unlabelled.returncode == OUTSIDE_SUBSET
    assert SECRET not in unlabelled.stderr
    op.write({"signed_in": True, "items": {"devpi": SECRET}})
    not_a_list = op("item", "get", "devpi")
    assert not_a_list.returncode == OUTSIDE_SUBSET
    assert "needs a list 'items'" in not_a_list.stderr
    assert SECRET not in not_a_list.stderr
    missing = subprocess.run(
        [str(OP), "whoami"], env=base_env(), capture_output=True, text=True, check=False
    )
    assert missing.returncode == OUTSIDE_SUBSET
    assert "OP_STANDIN_ITEMS is not set" in missing.stderr


def test_log_records_argv_without_secrets(op: Op) -> None:
    op("--version")
    op("item", "get", "devpi", "--format", "json", "--session=sess-secret")
    op("account", "get", "--session", "sess-secret")
    op("whoami", OP_SERVICE_ACCOUNT_TOKEN=SA_TOKEN)
    calls = op.calls()
    assert [c["argv"] for c in calls] == [
        ["--version"],
        ["item", "get", "devpi", "--format", "json", "--session=<redacted>"],
        ["account", "get", "--session", "<redacted>"],
        ["whoami"],
    ]
    assert [c["auth"]["service_account_token"] for c in calls] == [False, False, False, True]
    text = op.log.read_text(encoding="utf-8")
    assert SECRET not in text
    assert SA_TOKEN not in text
    assert "sess-secret" not in text


def test_no_log_unless_asked(op: Op, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(OP), "item", "get", "devpi", "--format", "json"],
        env={**base_env(), "OP_STANDIN_ITEMS": str(op.fixture)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.json"]


# --- the real community.general.onepassword lookup, end to end ------------------------------


@dataclass(frozen=True)
class Scenario:
    term: str = "devpi"
    vault: str | None = None
    fixture: dict[str, Any] | None = None
    env: dict[str, str] | None = None

    def expression(self) -> str:
        extra = f", vault={self.vault!r}" if self.vault is not None else ""
        return LOOKUP.format(term=repr(self.term), extra=extra)


SCENARIOS: dict[str, Scenario] = {
    "plain": Scenario(),
    "vault": Scenario(vault="Private"),
    "unknown_item": Scenario(term="nope"),
    "signed_out": Scenario(fixture=fixture_data(signed_in=False)),
    "service_account": Scenario(
        vault="Private",
        fixture=fixture_data(signed_in=False),
        env={"OP_SERVICE_ACCOUNT_TOKEN": SA_TOKEN},
    ),
    "service_account_without_vault": Scenario(
        fixture=fixture_data(signed_in=False), env={"OP_SERVICE_ACCOUNT_TOKEN": SA_TOKEN}
    ),
}


@dataclass(frozen=True)
class LookupRun:
    returncode: int
    result: dict[str, Any]  # the host's task result, from ansible-core's default callback
    calls: list[list[str]]
    log: str
    output: str


@pytest.fixture(scope="module")
def lookup_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LookupRun]]:
    """Run every scenario's `ansible localhost -m debug` at once; stand-in first on PATH."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "op").symlink_to(OP)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    ansible = shutil.which("ansible", path=path)
    assert ansible, "ansible is not installed next to this Python"
    started = {}
    for name, scenario in SCENARIOS.items():
        work = tmp_path_factory.mktemp(name)
        (work / "home").mkdir()  # no ~/.config/op/config: the lookup's sign-in path is fixed
        (work / "items.json").write_text(json.dumps(scenario.fixture or fixture_data()))
        env = {
            **base_env(),
            **(scenario.env or {}),
            "PATH": path,
            "HOME": str(work / "home"),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            **ADHOC_ENV,
            "OP_STANDIN_ITEMS": str(work / "items.json"),
            "OP_STANDIN_LOG": str(work / "calls.jsonl"),
        }
        argv = [ansible, "localhost", "-m", "ansible.builtin.debug"]
        argv += ["-a", "msg={{ " + scenario.expression() + " }}"]
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started[name] = (process, work)
    runs = {}
    for name, (process, work) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        log_file = work / "calls.jsonl"
        log = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
        runs[name] = LookupRun(
            returncode=process.returncode,
            result=adhoc_result(stdout),
            calls=[json.loads(line)["argv"] for line in log.splitlines()],
            log=log,
            output=stdout + stderr,
        )
    yield runs


SIGNED_IN_CHECKS = [["--version"], ["account", "list"], ["account", "get"]]
ITEM_GET = ["item", "get", "devpi", "--format", "json"]


def test_lookup_returns_the_fixture_value(lookup_runs: dict[str, LookupRun]) -> None:
    run = lookup_runs["plain"]
    assert run.returncode == 0, run.output
    assert run.result["msg"] == SECRET
    assert run.calls == [*SIGNED_IN_CHECKS, ITEM_GET]


def test_lookup_with_vault(lookup_runs: dict[str, LookupRun]) -> None:
    run = lookup_runs["vault"]
    assert run.returncode == 0, run.output
    assert run.result["msg"] == SECRET
    assert run.calls == [*SIGNED_IN_CHECKS, [*ITEM_GET, "--vault=Private"]]


def test_lookup_fails_clearly_for_an_unknown_item(lookup_runs: dict[str, LookupRun]) -> None:
    run = lookup_runs["unknown_item"]
    assert run.returncode != 0
    assert run.result["failed"] is True
    assert "The lookup plugin 'community.general.onepassword' failed" in run.result["msg"]
    assert re.search(r"\"nope\" isn\\?'t an item", run.result["msg"])
    assert run.calls[-1] == ["item", "get", "nope", "--format", "json"]


def test_lookup_fails_when_signed_out(lookup_runs: dict[str, LookupRun]) -> None:
    run = lookup_runs["signed_out"]
    assert run.returncode != 0
    assert run.result["failed"] is True
    # `op account get` failed, so the lookup tries to sign in and has no credentials for it.
    assert "Unable to sign in to 1Password. Missing required parameters" in run.result["msg"]
    assert run.calls == SIGNED_IN_CHECKS
    assert SECRET not in run.output


def test_lookup_with_a_service_account_token(lookup_runs: dict[str, LookupRun]) -> None:
    run = lookup_runs["service_account"]
    assert run.returncode == 0, run.output
    assert run.result["msg"] == SECRET
    assert run.calls == [["--version"], ["whoami"], [*ITEM_GET, "--vault=Private"]]
    assert '"service_account_token": true' in run.log
    assert SA_TOKEN not in run.log

    without_vault = lookup_runs["service_account_without_vault"]
    assert without_vault.returncode != 0
    assert "'vault' is required with 'service_account_token'" in without_vault.result["msg"]
    assert without_vault.calls == [["--version"], ["whoami"]]
