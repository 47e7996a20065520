# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The documentation matches the code: every role input is specified, defaulted and in both
READMEs; every module's documentation parses, lists exactly its options and names its action
group; every ansible-core the collection claims is tested and in the README; the README keeps
the checkout's quick start."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "devpi"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "variables_table", ROOT / "tools/variables_table.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_default_has_a_described_spec_and_back() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("type"), f"{name} has no type"
        if "default" in spec:
            assert spec["default"] == defaults[name], (
                f"{name}: spec default differs from defaults/main.yml"
            )


@pytest.mark.parametrize("role", ["devpi", "client"])
def test_readme_variable_tables_are_current(role: str) -> None:
    tool = _tool()
    generated = tool.table(role)
    for readme in tool.readmes(role):
        text = readme.read_text()
        assert tool.embed(text, generated, role) == text, (
            f"{readme.relative_to(ROOT)} is out of date: run tools/variables_table.py --write"
        )


MODULES = sorted((ROOT / "plugins/modules").glob("*.py"))


def _own_fragments(documentation: dict[str, Any]) -> list[dict[str, Any]]:
    """The collection's doc fragments a module's documentation extends, parsed:
    ``mcquack.devpi.FILE`` is FILE's DOCUMENTATION, ``mcquack.devpi.FILE.NAME`` its NAME
    (upper-cased), as Ansible resolves them."""
    parsed = []
    for name in documentation.get("extends_documentation_fragment", []):
        parts = name.split(".")
        if parts[:2] != ["mcquack", "devpi"]:
            continue
        fragments = importlib.import_module(
            f"ansible_collections.mcquack.devpi.plugins.doc_fragments.{parts[2]}"
        )
        variable = parts[3].upper() if len(parts) > 3 else "DOCUMENTATION"
        parsed.append(yaml.safe_load(getattr(fragments.ModuleDocFragment, variable)))
    return parsed


def _documentation(path: Path) -> dict[str, Any]:
    module = importlib.import_module(
        f"ansible_collections.mcquack.devpi.plugins.modules.{path.stem}"
    )
    documentation: dict[str, Any] = yaml.safe_load(module.DOCUMENTATION)
    return documentation


def test_every_module_is_in_the_action_group() -> None:
    """meta/runtime.yml's action group holds every module, so one module_defaults entry
    (group/mcquack.devpi.devpi) reaches all of them; a new module must join it."""
    runtime = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["devpi"]) == [path.stem for path in MODULES]


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_docs_name_the_action_group(path: Path) -> None:
    """Each module's documentation says, as Ansible's attribute action_group, which
    module_defaults group it belongs to (ansible-doc and the docsite show it)."""
    documentation = _documentation(path)
    attributes = dict(documentation.get("attributes") or {})
    for fragment in _own_fragments(documentation):
        attributes.update(fragment.get("attributes") or {})
    group = attributes.get("action_group")
    assert group, f"{path.stem} does not document its action group"
    assert group["membership"] == ["mcquack.devpi.devpi"]
    assert group["support"] == "full"
    assert "group/mcquack.devpi.devpi" in group["description"]


class _Captured(Exception):
    pass


def _argument_spec(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The argument_spec a module's main() hands to AnsibleModule, captured before it runs."""
    captured: dict[str, Any] = {}

    def fake(**kwargs: Any) -> None:
        captured.update(kwargs["argument_spec"])
        raise _Captured

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(_Captured):
        module.main()
    return captured


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_docs_parse_and_match_the_argument_spec(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(
        f"ansible_collections.mcquack.devpi.plugins.modules.{path.stem}"
    )
    documentation = yaml.safe_load(module.DOCUMENTATION)
    assert isinstance(yaml.safe_load(module.EXAMPLES), list)
    assert isinstance(yaml.safe_load(module.RETURN), dict)
    options = dict(documentation.get("options") or {})
    for fragment in _own_fragments(documentation):
        options.update(fragment.get("options") or {})
    spec = _argument_spec(module, monkeypatch)
    assert set(options) == set(spec), "documented options differ from the argument_spec"
    for name, doc in options.items():
        assert doc.get("description"), f"{name} has no description"
        assert doc.get("type", "str") == spec[name].get("type", "str"), f"{name}: type differs"
        assert doc.get("default") == spec[name].get("default"), f"{name}: default differs"


def _admitted_minors() -> list[str]:
    runtime = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())
    spec = SpecifierSet(runtime["requires_ansible"])
    assert any(s.operator == "<" for s in spec), "requires_ansible needs the upper bound tested"
    return [f"2.{minor}" for minor in range(100) if spec.contains(f"2.{minor}.0")]


def _pinned_core(lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith("ansible-core=="):
            return line.split("==", 1)[1].strip()
    return None


def test_every_ansible_core_the_collection_claims_is_tested_and_in_the_readme() -> None:
    """Each minor version requires_ansible admits has its sanity ignore file and a lock that
    tools/ecosystem runs ansible-test from (the toolchain's own, or
    tools/requirements-core-2.NN.txt), and the README's support table names what is tested."""
    minors = _admitted_minors()
    assert minors, "requires_ansible admits no ansible-core"
    readme = (ROOT / "README.md").read_text()
    toolchain = _pinned_core(ROOT / "tools/requirements.txt")
    for minor in minors:
        assert (ROOT / f"tests/sanity/ignore-{minor}.txt").is_file(), f"no ignore file for {minor}"
        lock = ROOT / f"tools/requirements-core-{minor}.txt"
        pinned = toolchain if toolchain and toolchain.startswith(f"{minor}.") else None
        if pinned is None:
            assert lock.is_file(), f"nothing runs ansible-test of ansible-core {minor}"
            pinned = _pinned_core(lock)
        assert pinned and pinned.startswith(f"{minor}."), (minor, pinned)
        assert pinned in readme, f"the README's support table does not name {pinned}"
    for ignore in (ROOT / "tests/sanity").glob("ignore-*.txt"):
        assert ignore.stem.removeprefix("ignore-") in minors, (
            f"{ignore.name} is for no claimed version"
        )


def test_the_readme_keeps_the_checkout_quick_start_and_leaves_the_house_out() -> None:
    """Two commands after cloning: one brings devpi up on a test host, one runs the whole suite
    (what .ci/run runs). The house deployment has its own document."""
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.split("#")[0].strip()
        for line in readme.splitlines()
        if line.startswith("npx --yes @jdxcode/mise run ")
    ]
    assert commands == ["npx --yes @jdxcode/mise run up", "npx --yes @jdxcode/mise run test"]
    assert "npx --yes @jdxcode/mise run test" in (ROOT / ".ci/run").read_text()
    assert "indri" not in readme and "eblu.me" not in readme
    assert "docs/house-deployment.md" in readme
    assert (ROOT / "docs/house-deployment.md").is_file()
