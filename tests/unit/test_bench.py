# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The bench's pure parts (tools/mcquack_bench): downtime, pair-by-pair ratios, the install
step, the targets table and its verdicts, Ansible reports and SSH counts, the results tables,
the report template, the flags, the measurement table, and the backup data set made through a
real devpi-server's API. The measurements themselves need test hosts and are run by
`mise run bench`, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules import devpi_testserver

from mcquack_bench import backup, cli, measurements, plays, report, results, targets
from mcquack_bench.first import install_seconds
from mcquack_bench.hosts import downtime
from mcquack_bench.results import Results

ROOT = Path(__file__).resolve().parents[2]
# The session's real devpi-server (a fixture), as the module tests get it from their conftest.
devpi = devpi_testserver.devpi


def test_downtime_sums_the_intervals_that_start_with_a_failure() -> None:
    samples = [(0.0, True), (0.1, False), (0.2, False), (0.3, True), (0.4, False), (0.6, True)]
    total, outages = downtime(samples)
    assert total == pytest.approx(0.4)
    assert outages == 2
    assert downtime([(0.0, True), (0.1, True)]) == (0.0, 0)


def test_ratios_are_taken_pair_by_pair() -> None:
    measured = Results()
    for pip, uv in ((30.0, 10.0), (20.0, 20.0), (12.0, 4.0)):
        measured.add("pip", "s", "pip", pip)
        measured.add("uv", "s", "uv", uv)
    results.ratio_pairs(measured, "ratio", "pip / uv", "pip", "uv")
    series = measured.get("ratio")
    assert series is not None
    assert series.values == [3.0, 1.0, 3.0]
    assert series.median == 3.0  # the ratio of the medians would be 20 / 10 = 2
    results.ratio_pairs(measured, "none", "missing", "pip", "absent")
    assert measured.get("none") is None


def task(name: str, seconds: float, status: str = "ok", **entry: Any) -> dict[str, Any]:
    return {
        "name": f"mcquack.devpi.devpi : {name}",
        "action": "ansible.builtin.command",
        "start": 100.0,
        "end": 100.0 + seconds,
        "hosts": {"bench-first": {"status": status, "changed": status == "ok", **entry}},
    }


def play(*tasks: dict[str, Any], wall: float = 20.0) -> plays.PlayRun:
    return plays.PlayRun(
        wall=wall,
        start=0.0,
        end=wall,
        report={"tasks": list(tasks), "stats": {"bench-first": {"ok": 3, "changed": 0}}},
        output="",
        log=Path("unused"),
    )


def test_the_install_step_is_the_venv_and_the_pins_that_ran() -> None:
    run = play(
        task("Look for uv", 0.3),
        task("Create the venv with uv", 0.25),
        task("Create the venv with python -m venv", 0.01, "skipped"),
        task("Install the pins with uv", 6.0),
        task("Install the pins with pip", 0.01, "skipped"),
        task("Wait for devpi to answer /+api", 4.0),
    )
    assert install_seconds(run) == pytest.approx(6.25)
    assert run.task_seconds() == pytest.approx(10.57)
    assert run.outside_tasks() == pytest.approx(20.0 - 10.57)
    assert run.stats() == {"ok": 3, "changed": 0}


def test_a_task_s_status_and_module_runs_come_from_its_host_entry() -> None:
    assert plays.task_status(task("a", 1.0)) == ("changed", 1)
    assert plays.task_status(task("a", 1.0, "skipped")) == ("skipped", 0)
    assert plays.task_status(task("a", 1.0, items=4, items_skipped=1)) == ("changed", 3)
    assert plays.task_status({"hosts": {}}) == ("no result", 0)
    assert plays.is_remote("ansible.builtin.command")
    assert not plays.is_remote("ansible.builtin.set_fact") and not plays.is_remote("assert")


def test_a_profile_matches_tasks_by_position_over_runs() -> None:
    first = play(task("Probe", 0.5), task("Plan", 0.1))
    second = play(task("Probe", 0.7), task("Other", 0.2))
    probe, plan = plays.profile([first, second])
    assert (probe.name, probe.status, probe.remote, probe.runs) == (
        "mcquack.devpi.devpi : Probe",
        "changed",
        True,
        1,
    )
    assert probe.durations == pytest.approx([0.5, 0.7])
    assert plan.durations == pytest.approx([0.1])  # run two had another task there


def test_the_installer_text_says_how_far_the_ratio_can_go() -> None:
    measured = Results()
    measured.add("first_converge.uv", "s", "uv", 18.0)
    measured.add("first_converge.install_uv", "s", "uv install", 6.0)
    measured.add("first_converge.install_pip", "s", "pip install", 13.0)
    assert "not even a converge that did nothing but install" in report.installer_text(measured)

    measured = Results()
    measured.add("first_converge.uv", "s", "uv", 18.0)
    measured.add("first_converge.install_uv", "s", "uv install", 2.0)
    measured.add("first_converge.install_pip", "s", "pip install", 14.0)
    text = " ".join(report.installer_text(measured).split())
    assert "only if that rest is at most (pip install - 3 x uv install) / 2 = 4.00 s" in text
    assert report.installer_text(Results()) == ""


def test_targets_are_judged_from_the_medians() -> None:
    measured = Results()
    for over in (1.9, 2.1, 1.95):
        measured.add("noop.over_empty", "x", "ratio", over)
        measured.add("noop.converge", "s", "no-op", 2.0)
    verdicts = {t.label: t.met for t in targets.targets(measured)}
    assert verdicts["No-op converge vs. empty play"] is True
    assert verdicts["First converge (uv) to /+api"] is None  # not measured in this run

    measured.add("noop.over_empty", "x", "ratio", 2.2)
    measured.add("noop.over_empty", "x", "ratio", 2.3)
    verdicts = {t.label: t.met for t in targets.targets(measured)}
    assert verdicts["No-op converge vs. empty play"] is False


# The medians of the run docs/benchmarks.md reports (2026-12-01, tools/bench --runs 3), and
# the target rows that run wrote.
MEDIANS = {
    "noop.over_empty": 1.69,
    "noop.converge": 6.18,
    "noop.remote_modules": 1,
    "first_converge.uv": 46.61,
    "first_converge.pip_over_uv": 1.33,
    "upgrade.downtime": 14.6,
    "start.web": 12.71,
    "memory.rss_noweb": 55.7,
    "defaults.rss.shipped": 100.7,
    "defaults.cpu.shipped": 17.5,
}
REPORTED = """\
| No-op converge vs. empty play | ≤ 2.0x | 1.69x (6.18 s) | **met** |
| No-op converge: module runs on the host (facts excluded) | ≤ ~6 | 1 | **met** |
| No-op converge changes nothing | changed=0, same MainPID | changed max 0, MainPID changed in 0 runs | **met** |
| First converge (uv) to /+api | ≤ 20 s | 46.61 s | **not met** |
| First converge: pip time / uv time | ≥ 3x | 1.33x | **not met** |
| Upgrade downtime | ≤ one devpi start + 1 s | 14.60 s (start 12.71 s + 1 s = 13.71 s) | **not met** |
| RSS without devpi-web, 60 s after start | ≤ 100 MiB | 55.7 MiB | **met** |
| Role defaults: RSS 60 s after the first start | ≤ 120 MiB | 100.7 MiB | **met** |
| Role defaults: CPU seconds in the first minute | ≤ 15 s | 17.5 s | **not met** |
| Role defaults: first install right after converge | succeeds every time | 0 failed attempts in 3 runs | **met** |"""


def reported_run() -> Results:
    measured = Results()
    for key, value in MEDIANS.items():
        measured.add(key, "s", key, value)
    for _run in range(3):
        measured.add("noop.changed", "count", "changed", 0)
        measured.add("noop.mainpid_changed", "count", "moved", 0)
        measured.add("defaults.first_install_failed.shipped", "count", "failed", 0)
    return measured


def test_the_targets_table_gives_the_rows_of_the_reported_run() -> None:
    text = report.render_docs(reported_run(), META)
    assert REPORTED in text


def test_every_target_is_not_measured_without_its_series() -> None:
    verdicts = targets.targets(Results())
    assert [t.label for t in verdicts] == [t.label for t in targets.TARGETS]
    assert {(t.measured, t.met) for t in verdicts} == {("-", None)}
    text = targets.targets_text(verdicts).splitlines()
    assert text[0].split() == ["target", "goal", "measured", "(median)", "verdict"]
    assert {tuple(line.split()[-3:]) for line in text[1:]} == {("-", "not", "measured")}


def test_a_new_target_is_one_row() -> None:
    measured = Results()
    measured.add("upgrade.failed_requests.proxy", "count", "failed", 0)
    table = (
        targets.Target(
            "No failed request through the proxy",
            "0",
            targets.at_most("upgrade.failed_requests.proxy", 0, "{:.0f}"),
        ),
        targets.Target("Cache prune", "≥ 1x", targets.at_least("cache.prune", 1.0, "{:.2f}x")),
    )
    assert targets.targets(measured, table) == [
        targets.Verdict("No failed request through the proxy", "0", "0", True),
        targets.Verdict("Cache prune", "≥ 1x", "-", None),
    ]


def test_the_results_tables_format_by_unit() -> None:
    measured = Results()
    for value in (3.0, 1.0, 2.0):
        measured.add("a.count", "count", "a count", value)
    measured.add("b.rss", "MiB", "some memory", 87.25)
    measured.add("c.time", "s", "a time", 1.234)
    assert measured.get("a.count") is not None
    assert results.text_table(measured).splitlines() == [
        "measurement  unit   n  median   min   max  what",
        "a.count      count  3       2     1     3  a count",
        "b.rss        MiB    1    87.2  87.2  87.2  some memory",
        "c.time       s      1    1.23  1.23  1.23  a time",
    ]
    assert results.markdown_table(measured).splitlines()[2:] == [
        "| `a.count` | count | 3 | 2 | 1 | 3 | a count |",
        "| `b.rss` | MiB | 1 | 87.2 | 87.2 | 87.2 | some memory |",
        "| `c.time` | s | 1 | 1.23 | 1.23 | 1.23 | a time |",
    ]


def test_ssh_round_trips_and_module_runs_are_counted_per_task() -> None:
    log = "\n".join(
        [
            "TASK [Gathering Facts] *****",
            "<10.213.61.2> SSH: EXEC ssh -C -o ControlMaster=auto 10.213.61.2 '/bin/sh -c '\"'\"'/usr/bin/python3.11 && sleep 0'\"'\"''",
            "TASK [mcquack.devpi.devpi : Check the root password logs in] *****",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'echo ~ && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'( umask 77 && mkdir -p \"` echo /root/.ansible/tmp `\" ) && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'/usr/bin/python3.11 && sleep 0'\"'\"''",
            "<10.213.61.2> SSH: EXEC ssh -C 10.213.61.2 '/bin/sh -c '\"'\"'rm -f -r /root/.ansible/tmp/x/ > /dev/null 2>&1 && sleep 0'\"'\"''",
            "TASK [mcquack.devpi.devpi : Decide] *****",
        ]
    )
    counts = plays.ssh_execs_per_task(log)
    assert counts == [
        ("Gathering Facts", 1, 1),
        ("mcquack.devpi.devpi : Check the root password logs in", 4, 1),
        ("mcquack.devpi.devpi : Decide", 0, 0),
    ]
    profile = plays.profile(
        [play(task("Check the root password logs in", 0.2), task("Decide", 0.1))]
    )
    plays.attach_ssh_counts(profile, counts)
    assert [(t.ssh_execs, t.module_execs, t.remote) for t in profile] == [
        (4, 1, True),
        (0, 0, False),
    ]
    text = plays.profile_text(profile, [1.5]).splitlines()
    assert text[1].split() == [
        "1", "Check", "the", "root", "password", "logs", "in",
        "command", "changed", "yes", "1", "4", "200", "200",
    ]  # fmt: skip
    assert text[-1].split()[-2:] == ["1500", "1500"]
    markdown = plays.profile_markdown(profile, [1.5]).splitlines()
    assert markdown[2] == (
        "| 1 | Check the root password logs in | `command` | changed | yes | 1 | 4 | 200 | 200 |"
    )


META = {
    key: f"<{key}>"
    for key in ("date", "command", "runs", "total", "revision", "server", "web", "old", "ansible",
                "load_start", "load_end", "nproc", "cpu", "memory", "kernel", "os")
}  # fmt: skip


def test_the_report_renders_from_its_template() -> None:
    measured = Results()
    for shipped, full in ((90.0, 480.0), (95.0, 500.0)):
        measured.add("defaults.rss.shipped", "MiB", "rss", shipped)
        measured.add("defaults.rss.full_list", "MiB", "rss", full)
        measured.add("defaults.first_install_failed.shipped", "count", "failed", 0.0)
    measured.notes.append("a note")
    text = report.render_docs(measured, META)
    assert text.startswith("# Benchmarks\n")
    assert "| Date | <date> |" in text
    assert "| `defaults.rss.shipped` | MiB | 2 | 92.5 | 90.0 | 95.0 | rss |" in text
    assert "(`defaults.*.shipped`: 92.5 MiB" in text
    assert "| Role defaults: first install right after converge | succeeds every time |" in text
    assert "- a note" in text
    assert "`pip install requests` from this machine" in text
    assert "{{" not in text and "{%" not in text


def test_the_report_renders_with_nothing_measured() -> None:
    text = report.render_docs(Results(), META)
    assert "(no-op converge not measured in this run)" in text
    assert "(first converge not measured in this run)" in text
    assert "- none" in text


def test_the_flags_choose_measurements_in_the_table_s_order() -> None:
    args = cli.parse_args([])
    assert args.runs == 5 and args.only == list(measurements.NAMES)
    assert (args.old_server_version, args.old_web_version) == ("6.19.3", "5.1.0")
    assert cli.docs_path(args) == ROOT / "docs" / "benchmarks.md"
    subset = cli.parse_args(["--only", " replica,noop ,", "--runs", "3"])
    assert subset.only == ["noop", "replica"] and subset.runs == 3
    assert cli.docs_path(subset) is None
    assert cli.docs_path(cli.parse_args(["--only", "noop", "--docs", "x.md"])) == Path("x.md")
    assert cli.docs_path(cli.parse_args(["--docs", "x.md", "--no-docs"])) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "noop,nope,zzz"], "unknown measurement(s): nope, zzz"),
        (["--runs", "0"], "--runs must be at least 1"),
    ],
)
def test_bad_flags_are_refused_by_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_command_is_a_thin_script_over_the_package() -> None:
    helped = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench"), "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: tools/bench [-h] [--runs RUNS] [--only ONLY]")
    assert "--old-web-version" in helped.stdout
    refused = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench"), "--only", "nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "unknown measurement(s): nope" in refused.stderr


def test_the_measurement_table_names_steps_and_hosts() -> None:
    assert measurements.NAMES == (
        "first", "noop", "start", "memory", "upgrade", "defaults", "backup", "replica"
    )  # fmt: skip
    assert measurements.HOSTS == {
        "first": ("bench-first", 60),
        "steady": ("bench-steady", 61),
        "upgrade": ("bench-upgrade", 62),
        "defaults": ("bench-defaults", 63),
        "backup": ("bench-backup", 64),
        "primary": ("bench-primary", 65),
        "replica": ("bench-replica", 66),
    }
    # A net is one host's: two rows may share a host role (noop and start share the steady
    # host), never a net under another role.
    nets = [net for m in measurements.MEASUREMENTS for net in m.hosts.values()]
    assert len({net for _name, net in measurements.HOSTS.values()}) == len(measurements.HOSTS)
    assert set(nets) == {net for _name, net in measurements.HOSTS.values()}
    for measurement in measurements.MEASUREMENTS:
        assert callable(measurement.measure)
        assert measurement.measure.__name__ == "measure"


def steps(*names: str) -> list[str]:
    return [m.step for m in measurements.selected(names)]


def test_a_memory_or_start_run_is_the_one_start_memory_step() -> None:
    assert steps("memory") == ["start/memory"]
    assert steps("memory", "start") == ["start/memory"]
    assert steps("replica", "first", "upgrade", "start") == [
        "first", "start/memory", "upgrade", "replica"
    ]  # fmt: skip
    assert steps(*measurements.NAMES) == [
        "first", "noop", "start/memory", "upgrade", "defaults", "backup", "replica"
    ]  # fmt: skip


def test_a_run_s_samples_are_its_series_notes_and_facts() -> None:
    measured = Results()
    measured.add("start.web", "s", "start", 4.5)
    measured.notes.append("start/memory: 30 s")
    assert cli.samples(measured, {"date": "now"}) == {
        "meta": {"date": "now"},
        "series": {"start.web": {"unit": "s", "label": "start", "values": [4.5]}},
        "notes": ["start/memory: 30 s"],
    }


def test_the_backup_data_set_is_made_through_devpi_s_api(
    devpi: devpi_testserver.DevpiServer,  # pylint: disable=redefined-outer-name
) -> None:
    seeded = subprocess.run(
        [sys.executable, "-I", "-c", backup.SEED, devpi.url, devpi.root_password, "3", "2"],
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


def test_timed_runs_a_command_and_prints_its_seconds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", backup.TIMED, sys.executable, "-c", "import time; time.sleep(0.2)"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert 0.2 <= float(out) < 5
    failed = subprocess.run(
        [sys.executable, "-c", backup.TIMED, "false"], capture_output=True, timeout=30, check=False
    )
    assert failed.returncode != 0
