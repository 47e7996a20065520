# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""tools/bench's arithmetic and parsing: downtime, pair-by-pair ratios, the install step, the
targets' verdicts and the SSH counts read from a -vvv log. The measurements themselves need test
hosts and are run by `mise run bench`, not here."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules import devpi_testserver

ROOT = Path(__file__).resolve().parents[2]
# The session's real devpi-server (a fixture), as the module tests get it from their conftest.
devpi = devpi_testserver.devpi


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("mcquack_bench", str(ROOT / "tools/bench"))
    spec = importlib.util.spec_from_loader("mcquack_bench", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mcquack_bench"] = module  # dataclasses look their module up by name
    loader.exec_module(module)
    return module


def test_downtime_sums_the_intervals_that_start_with_a_failure(bench: ModuleType) -> None:
    samples = [(0.0, True), (0.1, False), (0.2, False), (0.3, True), (0.4, False), (0.6, True)]
    total, outages = bench.downtime(samples)
    assert total == pytest.approx(0.4)
    assert outages == 2
    assert bench.downtime([(0.0, True), (0.1, True)]) == (0.0, 0)


def test_ratios_are_taken_pair_by_pair(bench: ModuleType) -> None:
    results = bench.Results()
    for pip, uv in ((30.0, 10.0), (20.0, 20.0), (12.0, 4.0)):
        results.add("pip", "s", "pip", pip)
        results.add("uv", "s", "uv", uv)
    bench.ratio_pairs(results, "ratio", "pip / uv", "pip", "uv")
    series = results.get("ratio")
    assert series.values == [3.0, 1.0, 3.0]
    assert series.median == 3.0  # the ratio of the medians would be 20 / 10 = 2


def task(name: str, seconds: float, status: str = "ok") -> dict[str, Any]:
    return {
        "name": f"mcquack.devpi.devpi : {name}",
        "action": "ansible.builtin.command",
        "start": 100.0,
        "end": 100.0 + seconds,
        "hosts": {"bench-first": {"status": status, "changed": status == "ok"}},
    }


def test_the_install_step_is_the_venv_and_the_pins_that_ran(bench: ModuleType) -> None:
    run = bench.PlayRun(
        wall=20.0,
        start=0.0,
        end=20.0,
        report={
            "tasks": [
                task("Look for uv", 0.3),
                task("Create the venv with uv", 0.25),
                task("Create the venv with python -m venv", 0.01, "skipped"),
                task("Install the pins with uv", 6.0),
                task("Install the pins with pip", 0.01, "skipped"),
                task("Wait for devpi to answer /+api", 4.0),
            ]
        },
        output="",
        log=Path("unused"),
    )
    assert bench.install_seconds(run) == pytest.approx(6.25)


def test_the_installer_text_says_how_far_the_ratio_can_go(bench: ModuleType) -> None:
    results = bench.Results()
    results.add("first_converge.uv", "s", "uv", 18.0)
    results.add("first_converge.install_uv", "s", "uv install", 6.0)
    results.add("first_converge.install_pip", "s", "pip install", 13.0)
    assert "not even a converge that did nothing but install" in bench.installer_text(results)

    results = bench.Results()
    results.add("first_converge.uv", "s", "uv", 18.0)
    results.add("first_converge.install_uv", "s", "uv install", 2.0)
    results.add("first_converge.install_pip", "s", "pip install", 14.0)
    text = " ".join(bench.installer_text(results).split())
    assert "only if that rest is at most (pip install - 3 x uv install) / 2 = 4.00 s" in text


def test_targets_are_judged_from_the_medians(bench: ModuleType) -> None:
    results = bench.Results()
    for over in (1.9, 2.1, 1.95):
        results.add("noop.over_empty", "x", "ratio", over)
        results.add("noop.converge", "s", "no-op", 2.0)
    verdicts = {t.label: t.met for t in bench.targets(results)}
    assert verdicts["No-op converge vs. empty play"] is True
    assert verdicts["First converge (uv) to /+api"] is None  # not measured in this run

    results.add("noop.over_empty", "x", "ratio", 2.2)
    results.add("noop.over_empty", "x", "ratio", 2.3)
    verdicts = {t.label: t.met for t in bench.targets(results)}
    assert verdicts["No-op converge vs. empty play"] is False


def test_ssh_round_trips_and_module_runs_are_counted_per_task(bench: ModuleType) -> None:
    log = "\n".join(
        [
            "TASK [Gathering Facts] *****",
            "<10.213.61.2> SSH: EXEC ssh -C -o ControlMaster=auto 10.213.61.2 '/bin/sh -c '\"'\"'/usr/bin/python3.11 && sleep 0'\"'\"''",
            "TASK [mcquack.devpi.devpi : Check the root password logs in] *****",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'echo ~ && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'( umask 77 && mkdir -p \"` echo /root/.ansible/tmp `\" ) && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'/usr/bin/python3.11 && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'rm -f -r /root/.ansible/tmp/x/ > /dev/null 2>&1 && sleep 0'\"'\"''",
        ]
    )
    assert bench.ssh_execs_per_task(log) == [
        ("Gathering Facts", 1, 1),
        ("mcquack.devpi.devpi : Check the root password logs in", 4, 1),
    ]


META = {
    key: f"<{key}>"
    for key in ("date", "command", "runs", "total", "revision", "server", "web", "old", "ansible",
                "load_start", "load_end", "nproc", "cpu", "memory", "kernel", "os")
}  # fmt: skip


def test_the_report_renders_from_its_template(bench: ModuleType) -> None:
    results = bench.Results()
    for shipped, full in ((90.0, 480.0), (95.0, 500.0)):
        results.add("defaults.rss.shipped", "MiB", "rss", shipped)
        results.add("defaults.rss.full_list", "MiB", "rss", full)
        results.add("defaults.first_install_failed.shipped", "count", "failed", 0.0)
    results.notes.append("a note")
    text = bench.render_docs(results, META)
    assert text.startswith("# Benchmarks\n")
    assert "| Date | <date> |" in text
    assert "| `defaults.rss.shipped` | MiB | 2 | 92.5 | 90.0 | 95.0 | rss |" in text
    assert "(`defaults.*.shipped`: 92.5 MiB" in text
    assert "| Role defaults: first install right after converge | succeeds every time |" in text
    assert "- a note" in text
    assert "{{" not in text and "{%" not in text


def test_the_report_renders_with_nothing_measured(bench: ModuleType) -> None:
    text = bench.render_docs(bench.Results(), META)
    assert "(no-op converge not measured in this run)" in text


def test_the_backup_data_set_is_made_through_devpi_s_api(
    bench: ModuleType,
    devpi: devpi_testserver.DevpiServer,  # pylint: disable=redefined-outer-name
) -> None:
    seeded = subprocess.run(
        [sys.executable, "-c", bench.BACKUP_SEED, devpi.url, devpi.root_password, "3", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.strip() == "3"
    assert devpi.user("bench") is not None
    index = devpi.index("bench/dev")
    assert index is not None and index["bases"] == ["root/pypi"]
    status, listing = devpi.request("GET", "/bench/dev")
    assert status == 200
    assert sorted(listing["result"]["projects"]) == ["benchpkg000", "benchpkg001", "benchpkg002"]
    status, project = devpi.request("GET", "/bench/dev/benchpkg001")
    links = project["result"]["1.0"]["+links"]
    assert [link["href"].rsplit("/", 1)[-1] for link in links] == [
        "benchpkg001-1.0-py3-none-any.whl"
    ]
    # Each wheel carries KiB of random data: it does not compress away in an export.
    assert links[0]["hash_spec"].startswith("sha256=")


def test_timed_runs_a_command_and_prints_its_seconds(bench: ModuleType) -> None:
    out = subprocess.run(
        [sys.executable, "-c", bench.TIMED, sys.executable, "-c", "import time; time.sleep(0.2)"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert 0.2 <= float(out) < 5
    failed = subprocess.run(
        [sys.executable, "-c", bench.TIMED, "false"], capture_output=True, timeout=30, check=False
    )
    assert failed.returncode != 0
