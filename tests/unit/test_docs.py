"""The documentation matches the code: every role input is specified, defaulted and in both READMEs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

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


def test_readme_variable_tables_are_current() -> None:
    tool = _tool()
    generated = tool.table()
    for readme in tool.READMES:
        text = readme.read_text()
        assert tool.embed(text, generated) == text, (
            f"{readme.relative_to(ROOT)} is out of date: run tools/variables_table.py --write"
        )
