# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Every Python file of the project says its licence: after the shebang and encoding lines, if
any, the SPDX line of the project's licence (LICENSE: MIT) and a copyright line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPDX = "# SPDX-License-Identifier: MIT"
COPYRIGHT = re.compile(r"# Copyright \(c\) \d{4}(-\d{4})? mcquack\.devpi contributors")
# What a walk of a copy without git (ansible-test units runs on one) leaves out.
NOT_PROJECT = {"output", "__pycache__"}


def header_problem(text: str) -> str | None:
    """What is wrong with a Python file's licence lines, or None."""
    lines = text.splitlines()
    if not lines:
        return None  # an empty file (an empty __init__.py) has nothing to license
    index = 1 if lines[0].startswith("#!") else 0
    if index < len(lines) and re.match(r"#.*coding[:=]", lines[index]):
        index += 1
    header = [*lines[index : index + 2], "", ""][:2]
    if header[0] != SPDX:
        return f"line {index + 1} is not {SPDX!r}"
    if not COPYRIGHT.fullmatch(header[1]):
        return f"line {index + 2} is not '# Copyright (c) YEAR mcquack.devpi contributors'"
    return None


def is_python(path: Path) -> bool:
    if path.suffix == ".py":
        return True
    try:
        with path.open("rb") as f:
            first = f.readline()
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def project_files() -> list[str]:
    """The checkout's files: what git tracks or would add (not ignored); without git, every file
    outside hidden directories and ansible-test's output."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        listed = []
    if (ROOT / ".git").exists() and listed:
        return listed
    return [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(".") or part in NOT_PROJECT
            for part in path.relative_to(ROOT).parent.parts
        )
    ]


def python_files() -> list[str]:
    return sorted(
        name for name in project_files() if (ROOT / name).is_file() and is_python(ROOT / name)
    )


def test_every_python_file_has_the_licence_lines() -> None:
    files = python_files()
    assert "plugins/modules/devpi_user.py" in files
    assert "tests/doubles/launchctl" in files  # a script without .py, by its shebang
    problems = {
        name: problem
        for name in files
        if (problem := header_problem((ROOT / name).read_text(encoding="utf-8")))
    }
    assert not problems, f"files without the licence lines: {problems}"


def test_every_module_is_declared_mit_licensed_to_every_sanity_version() -> None:
    """ansible-test's validate-modules asks each module for a GPLv3 header; the collection is
    MIT, so each version's ignore file says so for every module, the same for all versions."""
    modules = sorted(path.name for path in (ROOT / "plugins/modules").glob("*.py"))
    assert "devpi_user.py" in modules
    ignores = sorted((ROOT / "tests/sanity").glob("ignore-2.*.txt"))
    assert len(ignores) >= 3
    for ignore in ignores:
        declared = {
            line.split()[0].removeprefix("plugins/modules/")
            for line in ignore.read_text().splitlines()
            if "validate-modules:missing-gplv3-license" in line
        }
        assert declared == set(modules), ignore.name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{SPDX}\n# Copyright (c) 2026 mcquack.devpi contributors\n", None),
        (f"#!/usr/bin/env python\n{SPDX}\n# Copyright (c) 2026 mcquack.devpi contributors\n", None),
        (
            f"#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n{SPDX}\n"
            "# Copyright (c) 2025-2026 mcquack.devpi contributors\n",
            None,
        ),
        ("", None),
        ('"""A docstring."""\n', "line 1 is not"),
        (f"#!/usr/bin/env python\n\n{SPDX}\n", "line 2 is not"),
        ("# SPDX-License-Identifier: GPL-3.0-or-later\n", "line 1 is not"),
        (f"{SPDX}\n", "line 2 is not '# Copyright"),
        (f"{SPDX}\n# Copyright (c) 2026 someone else\n", "line 2 is not '# Copyright"),
    ],
)
def test_the_check_tells_a_good_header_from_a_bad_one(text: str, problem: str | None) -> None:
    found = header_problem(text)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_a_script_is_python_by_its_shebang(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/usr/bin/env python3\nprint()\n")
    shell = tmp_path / "other"
    shell.write_text("#!/usr/bin/env bash\necho\n")
    assert is_python(script)
    assert not is_python(shell)
