#!/usr/bin/env python
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Print a role's variables as a Markdown table, from meta/argument_specs.yml and
defaults/main.yml. README.md and the role's README.md embed it between the role's markers
(devpi: <!-- variables:start --> / <!-- variables:end -->; client: <!-- client-variables:... -->);
`--write` refreshes them all, and tests/unit/test_docs.py fails when they drift."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLE = ROOT / "roles" / "devpi"
# Each role's table markers; both READMEs (the collection's and the role's) embed each table.
MARKERS = {
    "devpi": ("<!-- variables:start -->", "<!-- variables:end -->"),
    "client": ("<!-- client-variables:start -->", "<!-- client-variables:end -->"),
}
START, END = MARKERS["devpi"]
READMES = [ROOT / "README.md", ROLE / "README.md"]


def readmes(role: str) -> list[Path]:
    return [ROOT / "README.md", ROOT / "roles" / role / "README.md"]


def _plain(text: str) -> str:
    """Ansible doc markup (C(x), O(x), M(x), I(x)) to Markdown."""
    text = re.sub(r"[COM]\(([^()]*(?:\([^()]*\)[^()]*)*)\)", r"`\1`", text)
    text = re.sub(r"I\(([^)]*)\)", r"*\1*", text)
    return " ".join(text.split()).replace("|", "\\|")


def _suboptions(spec: dict[str, Any]) -> str:
    """The options of a dict (or of each entry of a list of dicts), one short phrase each."""
    options: dict[str, Any] = spec.get("options") or {}
    if not options:
        return ""
    parts = []
    for name, sub in options.items():
        notes = [sub["type"]]
        if sub.get("required"):
            notes.append("required")
        if "choices" in sub:
            notes.append("/".join(f"`{c}`" for c in sub["choices"]))
        parts.append(f"`{name}` ({', '.join(notes)})")
    lead = "Each entry: " if spec.get("type") == "list" else "Options: "
    return " " + lead + ", ".join(parts) + "."


def table(role: str = "devpi") -> str:
    path = ROOT / "roles" / role
    specs = yaml.safe_load((path / "meta" / "argument_specs.yml").read_text())
    options: dict[str, Any] = specs["argument_specs"]["main"]["options"]
    defaults: dict[str, Any] = yaml.safe_load((path / "defaults" / "main.yml").read_text())
    rows = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, spec in options.items():
        description = spec["description"]
        lines = description if isinstance(description, list) else [description]
        default = defaults.get(name)
        shown = (
            "*computed, see description*" if "{{" in str(default) else f"`{json.dumps(default)}`"
        )
        if isinstance(default, str) and "{{" not in default:
            shown = f'`"{default}"`'
        if spec.get("required"):
            shown = "*required*"
        if spec.get("no_log"):
            shown += " (secret)"
        choices = (
            f" Choices: {', '.join(f'`{c}`' for c in spec['choices'])}."
            if "choices" in spec
            else ""
        )
        text = " ".join(_plain(line) for line in lines) + choices + _suboptions(spec)
        rows.append(f"| `{name}` | {spec['type']} | {shown} | {text} |")
    return "\n".join(rows) + "\n"


def embed(readme: str, generated: str, role: str = "devpi") -> str:
    start, end = MARKERS[role]
    before, rest = readme.split(start, 1)
    _table, after = rest.split(end, 1)
    return f"{before}{start}\n{generated}{end}{after}"


def main() -> int:
    if sys.argv[1:] == ["--write"]:
        for role in MARKERS:
            generated = table(role)
            for readme in readmes(role):
                readme.write_text(embed(readme.read_text(), generated, role))
        return 0
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
