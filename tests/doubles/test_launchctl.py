# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The `launchctl` stand-in behaves like launchd's launchctl for the calls the role makes.

Every test drives tests/doubles/launchctl as a subprocess, with its own state directory
(LAUNCHCTL_STANDIN_STATE), plists written with plistlib, and a small Python job that reports its
argv, environment, working directory and identity to a JSON file and then sleeps. A fixture boots
out whatever a test loaded and kills anything left that mentions the test's directory, so no
process outlives a test, even a failing one.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import plistlib
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHCTL = ROOT / "tests" / "doubles" / "launchctl"
EIO = "Bootstrap failed: 5: Input/output error"
SYSTEM_PYTHON = "/usr/bin/python3"  # one every user can run, unlike a venv under /root

JOB = """\
import json
import os
import resource
import signal
import sys
import time

report = sys.argv[1]
options = sys.argv[2:]
if "--ignore-term" in options:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--child" in options and os.fork() == 0:
    time.sleep(300)
    os._exit(0)
print("out from", os.getpid(), flush=True)
print("err from", os.getpid(), file=sys.stderr, flush=True)
umask = os.umask(0)
os.umask(umask)
state = {
    "argv": sys.argv,
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": sorted(os.getgroups()),
    "sid": os.getsid(0),
    "umask": umask,
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
}
with open(report + ".tmp", "w") as f:
    json.dump(state, f)
os.replace(report + ".tmp", report)
with open(report + ".starts", "a") as f:
    f.write(f"{os.getpid()}\\n")
if "--exit" in options:
    sys.exit(int(options[options.index("--exit") + 1]))
time.sleep(300)
"""


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line contains `text` (zombies excluded)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found[int(entry.name)] = cmdline
    return found


class Lab:
    """One test's world: a directory, a state dir, plists, and the stand-in to run."""

    def __init__(self, directory: Path, command: list[str] | None = None) -> None:
        self.dir = directory
        # The interpreter running pytest, not the `#!/usr/bin/env python` lookup, which may go
        # through a slow shim; test_jobs_outlive_the_session... runs the file as a program.
        self.command = command or [sys.executable, str(LAUNCHCTL)]
        self.uid = os.geteuid()
        self.domain = f"gui/{self.uid}"
        self.job = directory / "job.py"
        self.job.write_text(JOB)
        self.env = {
            **os.environ,
            "LAUNCHCTL_STANDIN_STATE": str(directory / "state"),
            "CALLER_ONLY": "must not reach the job",
        }
        self.env.pop("LAUNCHCTL_STANDIN_NO_GUI", None)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def plist(self, label: str = "test.job", *options: str, **keys: Any) -> Path:
        """A plist for the reporting job, 0644, owned by the caller; keys override."""
        report = self.dir / f"{label}.json"
        definition: dict[str, Any] = {
            "Label": label,
            "ProgramArguments": [sys.executable, str(self.job), str(report), *options],
            "RunAtLoad": True,
            **keys,
        }
        definition = {k: v for k, v in definition.items() if v is not None}
        path = self.dir / f"{label}.plist"
        path.write_bytes(plistlib.dumps(definition))
        path.chmod(0o644)
        return path

    def report(self, label: str = "test.job", pid: int | None = None) -> dict[str, Any]:
        """The job's report, once the process `pid` (any, if None) has written it."""
        path = self.dir / f"{label}.json"

        def ready() -> dict[str, Any] | None:
            try:
                data: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return data if pid is None or data["pid"] == pid else None

        result: dict[str, Any] = wait_for(ready, what=f"the report of {label}")
        return result

    def starts(self, label: str = "test.job") -> list[int]:
        try:
            text = (self.dir / f"{label}.json.starts").read_text()
        except OSError:
            return []
        return [int(line) for line in text.split()]

    def bootstrap(self, path: Path) -> None:
        result = self.run("bootstrap", self.domain, str(path))
        assert result.returncode == 0, result.stderr
        assert result.stdout == result.stderr == ""

    def bootout(self, label: str = "test.job", domain: str | None = None) -> None:
        """bootout, then wait for `print` to say 113, as a caller of the real tool must."""
        target = f"{domain or self.domain}/{label}"
        result = self.run("bootout", target)
        assert result.returncode == 0, result.stderr
        wait_for(lambda: self.run("print", target).returncode == 113, what=f"{label} to go")

    def printed(self, label: str = "test.job") -> str:
        result = self.run("print", f"{self.domain}/{label}")
        assert result.returncode == 0, result.stderr
        return result.stdout

    def pid(self, label: str = "test.job") -> int | None:
        match = re.search(r"^\tpid = (\d+)$", self.printed(label), re.MULTILINE)
        return int(match.group(1)) if match else None

    def labels(self) -> list[str]:
        result = self.run("list")
        assert result.returncode == 0, result.stderr
        return [line.split("\t")[2] for line in result.stdout.splitlines()[1:]]

    def clean(self) -> None:
        """Boot out every loaded job, then kill anything still mentioning this test's dir."""
        try:
            labels = self.labels()
        except AssertionError:
            labels = []
        for label in labels:
            self.run("bootout", f"{self.domain}/{label}")
        targets = [f"{self.domain}/{label}" for label in labels]
        with contextlib.suppress(AssertionError):
            wait_for(lambda: all(self.run("print", t).returncode == 113 for t in targets))
        for pid in processes_mentioning(str(self.dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    world = Lab(tmp_path)
    try:
        yield world
    finally:
        world.clean()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, another user)")


# ---------------------------------------------------------------------------------------------
# bootstrap: what it starts


def test_bootstrap_starts_the_program_the_way_launchd_does(lab: Lab) -> None:
    workdir = lab.dir / "wd"
    workdir.mkdir()
    out, err = lab.dir / "out.log", lab.dir / "err.log"
    out.write_text("earlier line\n")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    soft = hard // 2
    path = lab.plist(
        "test.job",
        "~/not-expanded",
        "$HOME",
        "a b",
        EnvironmentVariables={"FOO": "bar", "DEVPISERVER_CONFIG": "/x/devpi.yml"},
        WorkingDirectory=str(workdir),
        StandardOutPath=str(out),
        StandardErrorPath=str(err),
        SoftResourceLimits={"NumberOfFiles": soft},
        HardResourceLimits={"NumberOfFiles": hard},
    )
    lab.bootstrap(path)

    pid = lab.pid()
    assert pid is not None
    report = lab.report(pid=pid)
    # No shell and no tilde expansion: argv is ProgramArguments, verbatim.
    assert report["argv"] == [
        str(lab.job),
        str(lab.dir / "test.job.json"),
        "~/not-expanded",
        "$HOME",
        "a b",
    ]
    assert report["cwd"] == str(workdir)
    env = report["env"]
    assert env["FOO"] == "bar" and env["DEVPISERVER_CONFIG"] == "/x/devpi.yml"
    assert env["PATH"] == "/usr/bin:/bin:/usr/sbin:/sbin"
    assert env["XPC_SERVICE_NAME"] == "test.job"
    assert env["HOME"] == pwd.getpwuid(lab.uid).pw_dir
    assert "CALLER_ONLY" not in env and "LAUNCHCTL_STANDIN_STATE" not in env
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert cmdline == [os.fsencode(a) for a in [sys.executable, *report["argv"]]]
    assert report["sid"] == pid  # its own session, as launchd does setsid(2)
    assert report["umask"] == 0o022

    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(soft), str(hard)]

    wait_for(lambda: "err from" in err.read_text(), what="stderr in the log")
    assert out.read_text() == f"earlier line\nout from {pid}\n"  # appended, not truncated
    assert err.read_text() == f"err from {pid}\n"
    assert err.stat().st_mode & 0o777 == 0o644


def test_a_binary_plist_is_a_plist(lab: Lab) -> None:
    path = lab.plist()
    path.write_bytes(plistlib.dumps(plistlib.loads(path.read_bytes()), fmt=plistlib.FMT_BINARY))
    lab.bootstrap(path)
    assert lab.report()["pid"] == lab.pid()


def test_program_is_the_executable_and_program_arguments_the_argv(lab: Lab) -> None:
    path = lab.plist(Program=sys.executable)
    definition = plistlib.loads(path.read_bytes())
    definition["ProgramArguments"][0] = "renamed-argv0"
    path.write_bytes(plistlib.dumps(definition))
    lab.bootstrap(path)
    pid = lab.report()["pid"]
    argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    assert argv0 == b"renamed-argv0"
    assert os.readlink(f"/proc/{pid}/exe") == os.path.realpath(sys.executable)
    assert f"program = {sys.executable}" in lab.printed()
    assert "\t\trenamed-argv0\n" in lab.printed()


def test_without_run_at_load_the_job_is_loaded_but_not_started(lab: Lab) -> None:
    lab.bootstrap(lab.plist(RunAtLoad=False))
    text = lab.printed()
    assert "\tstate = not running\n" in text
    assert "\tlast exit code = (never exited)\n" in text
    assert lab.pid() is None
    assert lab.starts() == []


# ---------------------------------------------------------------------------------------------
# bootstrap: what it refuses


def refused(lab: Lab, path: Path, reason: str) -> None:
    result = lab.run("bootstrap", lab.domain, str(path))
    assert result.returncode == 5, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == EIO
    assert lines[-1].startswith(f"launchctl stand-in: {path}: ")
    assert reason in lines[-1], lines[-1]
    if os.geteuid() != 0:
        assert lines[1] == "Try re-running the command as root for richer errors."
    assert lab.labels() == []
    assert lab.starts() == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a property list", "Invalid property list"),
        (
            b"<?xml version='1.0'?><plist version='1.0'><dict><key>Label</key>",
            "Invalid property list",
        ),
        (plistlib.dumps(["Label", "x"]), "the top level is an array"),
        (
            plistlib.dumps({"ProgramArguments": ["/bin/true"]}),
            "Invalid or missing service identifier",
        ),
        (
            plistlib.dumps({"Label": "", "Program": "/bin/true"}),
            "Invalid or missing service identifier",
        ),
        (plistlib.dumps({"Label": "x"}), "Invalid or missing Program/ProgramArguments"),
        (plistlib.dumps({"Label": "x", "ProgramArguments": []}), "ProgramArguments is empty"),
    ],
    ids=[
        "garbage",
        "truncated-xml",
        "array",
        "no-label",
        "empty-label",
        "no-program",
        "empty-argv",
    ],
)
def test_bootstrap_refuses_what_is_not_a_job(lab: Lab, content: bytes, reason: str) -> None:
    path = lab.dir / "bad.plist"
    path.write_bytes(content)
    path.chmod(0o644)
    refused(lab, path, reason)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"RunAtLoad": "true"}, "RunAtLoad must be a boolean, not a string"),
        ({"KeepAlive": 1}, "KeepAlive must be a boolean or a dictionary, not an integer"),
        ({"KeepAlive": {"SuccessfulExit": "no"}}, "KeepAlive:SuccessfulExit must be a boolean"),
        ({"ThrottleInterval": "1"}, "ThrottleInterval must be an integer, not a string"),
        ({"ThrottleInterval": True}, "ThrottleInterval must be an integer, not a boolean"),
        ({"ExitTimeOut": 1.5}, "ExitTimeOut must be an integer, not a real"),
        (
            {"EnvironmentVariables": {"PORT": 3141}},
            "EnvironmentVariables must be a dictionary of strings",
        ),
        ({"EnvironmentVariables": ["A=b"]}, "EnvironmentVariables must be a dictionary of strings"),
        ({"WorkingDirectory": ["/tmp"]}, "WorkingDirectory must be a string, not an array"),
        ({"StandardOutPath": 1}, "StandardOutPath must be a string"),
        ({"StandardErrorPath": False}, "StandardErrorPath must be a string"),
        (
            {"SoftResourceLimits": {"NumberOfFiles": "4096"}},
            "SoftResourceLimits must be a dictionary of integers",
        ),
        ({"HardResourceLimits": 4096}, "HardResourceLimits must be a dictionary of integers"),
        ({"ProcessType": 1}, "ProcessType must be a string"),
        ({"Umask": "9"}, "Umask must be an octal number"),
        ({"ProgramArguments": ["/bin/sleep", 5]}, "Invalid or missing Program/ProgramArguments"),
        ({"Program": ["/bin/sleep"]}, "Program must be a string, not an array"),
    ],
)
def test_bootstrap_refuses_a_key_of_the_wrong_type(
    lab: Lab, keys: dict[str, Any], reason: str
) -> None:
    refused(lab, lab.plist(**keys), reason)


@pytest.mark.parametrize(
    ("mode", "who"), [(0o664, "group"), (0o646, "others"), (0o666, "group and others")]
)
def test_bootstrap_refuses_a_plist_others_may_write(lab: Lab, mode: int, who: str) -> None:
    path = lab.plist()
    path.chmod(mode)
    refused(lab, path, f"Path had bad ownership/permissions (mode {mode:04o}: writable by {who})")


@needs_root
def test_bootstrap_refuses_a_plist_owned_by_someone_else(lab: Lab) -> None:
    path = lab.plist()
    os.chown(path, 4242, 4242)
    refused(lab, path, "Path had bad ownership/permissions (owned by uid 4242")


def test_bootstrap_refuses_a_missing_plist(lab: Lab) -> None:
    refused(lab, lab.dir / "absent.plist", "No such file or directory")


def test_bootstrap_refuses_a_label_already_loaded(lab: Lab) -> None:
    path = lab.plist()
    lab.bootstrap(path)
    pid = lab.pid()
    result = lab.run("bootstrap", lab.domain, str(path))
    assert result.returncode == 5
    assert result.stderr.splitlines()[0] == EIO
    assert "service already bootstrapped (test.job)" in result.stderr
    assert lab.pid() == pid
    assert len(lab.starts()) == 1


def test_concurrent_bootstraps_load_the_job_once(lab: Lab) -> None:
    path = lab.plist()
    calls = [
        subprocess.Popen(
            [*lab.command, "bootstrap", lab.domain, str(path)],
            env=lab.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _attempt in range(3)
    ]
    codes = sorted(call.wait(timeout=30) for call in calls)
    for call in calls:
        call.communicate()
    assert codes == [0, 5, 5]
    assert lab.labels() == ["test.job"]
    wait_for(lab.starts, what="the job to start")
    time.sleep(0.2)
    assert len(lab.starts()) == 1


def test_a_disabled_service_is_not_bootstrapped_until_enabled(lab: Lab) -> None:
    path = lab.plist()
    assert lab.run("disable", f"{lab.domain}/test.job").returncode == 0
    refused(lab, path, "Service is disabled")
    assert lab.run("enable", f"{lab.domain}/test.job").returncode == 0
    lab.bootstrap(path)
    assert lab.pid() is not None


# ---------------------------------------------------------------------------------------------
# print, list


def test_print_shows_a_loaded_job_and_113_once_it_is_booted_out(lab: Lab) -> None:
    out = lab.dir / "out.log"
    path = lab.plist(StandardOutPath=str(out), KeepAlive=True)
    lab.bootstrap(path)
    text = lab.printed()
    pid = lab.report()["pid"]
    assert text.startswith(f"{lab.domain}/test.job = {{\n")
    assert text.endswith("\n}\n")
    for line in [
        "\tstate = running",
        f"\tpath = {path}",
        "\ttype = LaunchAgent",
        f"\tprogram = {sys.executable}",
        "\targuments = {",
        f"\t\t{lab.job}",
        f"\tstdout path = {out}",
        f"\tpid = {pid}",
        "\tlast exit code = (never exited)",
        "\tproperties = keepalive | runatload | inferred program",
    ]:
        assert f"\n{line}\n" in text, line

    listed = lab.run("list")
    assert listed.stdout == f"PID\tStatus\tLabel\n{pid}\t0\ttest.job\n"
    domain = lab.run("print", lab.domain)
    assert domain.returncode == 0
    assert re.search(rf"\tservices = {{\n\t\t +{pid} +0 \ttest.job\n\t}}", domain.stdout)

    lab.bootout()
    gone = lab.run("print", f"{lab.domain}/test.job")
    assert gone.returncode == 113
    assert gone.stdout == ""
    assert (
        gone.stderr
        == f'Bad request.\nCould not find service "test.job" in domain for user gui: {lab.uid}\n'
    )
    assert lab.run("list").stdout == "PID\tStatus\tLabel\n"
    missing = lab.run("list", "test.job")
    assert missing.returncode == 113


def test_list_of_one_label(lab: Lab) -> None:
    lab.bootstrap(lab.plist())
    pid = lab.report()["pid"]
    result = lab.run("list", "test.job")
    assert result.returncode == 0
    assert f'\t"PID" = {pid};\n' in result.stdout
    assert '\t"Label" = "test.job";\n' in result.stdout


# ---------------------------------------------------------------------------------------------
# KeepAlive and ThrottleInterval


def test_keep_alive_restarts_a_killed_job_after_the_throttle_interval(lab: Lab) -> None:
    lab.bootstrap(lab.plist(KeepAlive=True, ThrottleInterval=1))
    started = time.monotonic()
    first = lab.report()["pid"]
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := lab.pid()) != first and p, timeout=5, what="a restart")
    assert time.monotonic() - started >= 0.9  # not sooner than ThrottleInterval after the start
    assert lab.report(pid=second)["pid"] == second
    text = lab.printed()
    assert "\tlast terminating signal = Killed: 9\n" in text
    assert "\truns = 2\n" in text
    assert lab.starts() == [first, second]


def test_a_job_without_keep_alive_stays_dead(lab: Lab) -> None:
    lab.bootstrap(lab.plist(ThrottleInterval=1))
    pid = lab.report()["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(1.5)
    text = lab.printed()  # still loaded: print exits 0
    assert "\tstate = not running\n" in text
    assert "\tpid = " not in text
    assert "\tlast terminating signal = Killed: 9\n" in text
    assert lab.run("list").stdout == "PID\tStatus\tLabel\n-\t-9\ttest.job\n"
    assert lab.starts() == [pid]


@pytest.mark.parametrize(("status", "restarts"), [(3, True), (0, False)])
def test_keep_alive_successful_exit_false_restarts_only_failures(
    lab: Lab, status: int, restarts: bool
) -> None:
    path = lab.plist(
        "test.job",
        "--exit",
        str(status),
        RunAtLoad=None,
        ThrottleInterval=1,
        KeepAlive={"SuccessfulExit": False},
    )
    lab.bootstrap(path)  # SuccessfulExit implies RunAtLoad
    if restarts:
        wait_for(lambda: len(lab.starts()) >= 2, timeout=5, what="a restart")
        assert f"\tlast exit code = {status}\n" in lab.printed()
    else:
        wait_for(lambda: "\tlast exit code = 0\n" in lab.printed(), what="the exit")
        time.sleep(1.5)
        assert len(lab.starts()) == 1


# ---------------------------------------------------------------------------------------------
# kickstart


def test_kickstart_k_restarts_the_loaded_definition_not_the_file(lab: Lab) -> None:
    path = lab.plist("test.job", "version-1")
    lab.bootstrap(path)
    first = lab.report()["pid"]
    lab.plist("test.job", "version-2")  # the plist changes on disk

    result = lab.run("kickstart", "-k", "-p", f"{lab.domain}/test.job")
    assert result.returncode == 0, result.stderr
    second = int(result.stdout)
    assert second != first
    assert lab.pid() == second
    assert lab.report(pid=second)["argv"][-1] == "version-1"
    assert "\tlast terminating signal = Terminated: 15\n" in lab.printed()

    lab.bootout()
    lab.bootstrap(path)
    third = lab.pid()
    assert third is not None
    assert lab.report(pid=third)["argv"][-1] == "version-2"


def test_kickstart_without_k_leaves_a_running_job_alone(lab: Lab) -> None:
    lab.bootstrap(lab.plist())
    pid = lab.report()["pid"]
    result = lab.run("kickstart", "-p", f"{lab.domain}/test.job")
    assert result.returncode == 0
    assert result.stdout == f"{pid}\n"
    assert lab.pid() == pid
    assert lab.starts() == [pid]


def test_kickstart_starts_a_loaded_job_that_is_not_running(lab: Lab) -> None:
    lab.bootstrap(lab.plist(RunAtLoad=False))
    result = lab.run("kickstart", "-kp", f"{lab.domain}/test.job")
    assert result.returncode == 0
    pid = int(result.stdout)
    assert lab.report(pid=pid)["pid"] == pid
    assert "\tstate = running\n" in lab.printed()


def test_kickstart_of_a_job_not_loaded_is_113(lab: Lab) -> None:
    result = lab.run("kickstart", "-k", f"{lab.domain}/test.job")
    assert result.returncode == 113
    assert result.stderr == f'Could not find service "test.job" in domain for user gui: {lab.uid}\n'


# ---------------------------------------------------------------------------------------------
# bootout


def test_bootout_of_a_job_not_loaded(lab: Lab) -> None:
    result = lab.run("bootout", f"{lab.domain}/test.job")
    assert (result.returncode, result.stderr) == (3, "Boot-out failed: 3: No such process\n")
    by_path = lab.run("bootout", lab.domain, str(lab.plist()))
    assert by_path.returncode == 5
    assert by_path.stderr.splitlines()[0] == "Boot-out failed: 5: Input/output error"
    absent = lab.dir / "absent.plist"
    no_file = lab.run("bootout", lab.domain, str(absent))
    assert no_file.returncode == 2
    assert (
        no_file.stderr
        == f"{absent}: No such file or directory\nBoot-out failed: 2: No such file or directory\n"
    )


def test_bootout_by_path_unloads_the_label_in_the_file(lab: Lab) -> None:
    path = lab.plist()
    lab.bootstrap(path)
    pid = lab.report()["pid"]
    result = lab.run("bootout", lab.domain, str(path))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: lab.labels() == [], what="the job to go")
    assert processes_mentioning(str(lab.job)) == {}
    assert lab.starts() == [pid]


def test_bootout_returns_at_once_and_the_job_drains_as_on_macos(lab: Lab) -> None:
    # The job ignores SIGTERM and has a child in its process group. bootout returns while it
    # drains; the service stays in the domain as SIGTERMed until the SIGKILL after ExitTimeOut,
    # and only then is it gone - with every process: the job, its child, the supervisor.
    path = lab.plist("test.job", "--ignore-term", "--child", ExitTimeOut=3, KeepAlive=True)
    lab.bootstrap(path)
    pid = lab.report()["pid"]
    assert len(processes_mentioning(str(lab.job))) == 2  # the job and its child
    assert any("__supervise" in cmd for cmd in processes_mentioning(str(lab.dir)).values())

    started = time.monotonic()
    result = lab.run("bootout", f"{lab.domain}/test.job")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 0.9

    draining = lab.printed()
    assert "\tstate = SIGTERMed\n" in draining
    assert f"\tpid = {pid}\n" in draining
    again = lab.run("bootstrap", lab.domain, str(path))
    assert again.returncode == 5
    assert again.stderr.splitlines()[0] == EIO
    assert lab.run("kickstart", "-k", f"{lab.domain}/test.job").returncode == 37

    wait_for(lambda: lab.run("print", f"{lab.domain}/test.job").returncode == 113, what="the end")
    assert time.monotonic() - started >= 2.9  # SIGKILL came after ExitTimeOut, not before
    assert processes_mentioning(str(lab.dir)) == {}
    assert not list((lab.dir / "state" / f"gui.{lab.uid}").glob("job.*"))
    assert lab.starts() == [pid]  # KeepAlive does not resurrect a job being booted out
    lab.bootstrap(path)
    assert lab.pid() is not None


def test_jobs_outlive_the_session_that_bootstrapped_them(lab: Lab) -> None:
    """An SSH session ending kills its process group; the job and supervisor stay."""
    path = lab.plist()
    session = subprocess.Popen(
        [
            "sh",
            "-c",
            f'"$0" bootstrap {lab.domain} "$1"; echo done; sleep 60',
            str(LAUNCHCTL),
            str(path),
        ],
        env=lab.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert session.stdout is not None
    assert session.stdout.readline() == b"done\n"
    pid = lab.report()["pid"]
    os.killpg(session.pid, signal.SIGHUP)
    os.killpg(session.pid, signal.SIGKILL)
    # Nothing of launchctl's holds the session's pipes open, so this returns at once.
    session.communicate(timeout=10)
    time.sleep(0.3)
    assert lab.pid() == pid
    assert lab.starts() == [pid]


# ---------------------------------------------------------------------------------------------
# Domains, targets, subcommands


def test_a_gui_domain_without_a_gui_login_does_not_support_bootstrap(lab: Lab) -> None:
    result = lab.run("bootstrap", lab.domain, str(lab.plist()), LAUNCHCTL_STANDIN_NO_GUI="1")
    assert result.returncode == 125
    assert result.stderr == "Bootstrap failed: 125: Domain does not support specified action\n"
    assert lab.labels() == []


def test_targets_and_domains_are_checked(lab: Lab) -> None:
    unknown_uid = next(
        u for u in range(4_000_000, 4_000_100) if not any(p.pw_uid == u for p in pwd.getpwall())
    )
    result = lab.run("print", f"gui/{unknown_uid}/test.job")
    assert (result.returncode, result.stderr) == (
        112,
        f"Could not find domain for user gui: {unknown_uid}\n",
    )
    bad = lab.run("kickstart", "-k", "nonsense")
    assert bad.returncode == 64
    assert bad.stderr.startswith("Unrecognized target specifier.\n")
    assert lab.run("bootstrap", f"{lab.domain}/test.job", str(lab.plist())).returncode == 64
    assert lab.run("print", "system/").returncode == 64
    for other_domain in ("login/100008", "session/100008", "pid/1"):
        other = lab.run("print", f"{other_domain}/test.job")
        assert other.returncode == 160, other_domain
        assert other.stderr.startswith("launchctl stand-in: ")


def test_unknown_and_unimplemented_subcommands(lab: Lab) -> None:
    unknown = lab.run("frobnicate")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith(
        "Unrecognized subcommand: frobnicate\nUsage: launchctl <subcommand>"
    )
    legacy = lab.run("load", str(lab.plist()))
    assert legacy.returncode == 160
    assert legacy.stderr.startswith("launchctl stand-in: `launchctl load` is not implemented")
    assert lab.run("kickstart", "-s", f"{lab.domain}/test.job").returncode == 160
    assert lab.run("bootstrap").returncode == 64


@pytest.fixture
def shared_lab() -> Iterator[Lab]:
    """A lab another user can enter: a world-writable directory, its own copy of launchctl, run
    by the system's python3 (the supervisor re-executes the interpreter that ran launchctl, and
    after dropping to the job's user it must still be able to)."""
    directory = Path(tempfile.mkdtemp(prefix="launchctl-standin-test-"))
    directory.chmod(0o777)
    launchctl = directory / "launchctl"
    shutil.copy2(LAUNCHCTL, launchctl)
    launchctl.chmod(0o755)
    world = Lab(directory, [SYSTEM_PYTHON, str(launchctl)])
    world.job.chmod(0o644)
    try:
        yield world
    finally:
        world.clean()
        for label in ("test.job",):
            world.run("bootout", f"gui/65534/{label}")
        for pid in processes_mentioning(str(directory)):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


def as_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


@needs_root
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason=f"needs {SYSTEM_PYTHON}")
def test_root_may_bootstrap_into_another_users_domain_and_the_job_runs_as_that_user(
    shared_lab: Lab,
) -> None:
    lab = shared_lab
    path = lab.plist(ProgramArguments=[SYSTEM_PYTHON, str(lab.job), str(lab.dir / "test.job.json")])
    result = lab.run("bootstrap", "gui/65534", str(path))  # root-owned plist: allowed
    assert result.returncode == 0, result.stderr
    report = lab.report()
    assert report["uid"] == 65534
    assert report["env"]["USER"] == "nobody"

    # The owner of the domain sees and controls the job; another non-root user may not.
    own = subprocess.run(
        [*lab.command, "print", "gui/65534/test.job"],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=as_nobody,
        check=False,
    )
    assert own.returncode == 0, own.stderr
    assert f"\tpid = {report['pid']}\n" in own.stdout
    for args in (
        ["print", "gui/0/test.job"],
        ["bootstrap", "gui/0", str(path)],
        ["bootout", "gui/0/test.job"],
    ):
        denied = subprocess.run(
            [*lab.command, *args],
            env=lab.env,
            capture_output=True,
            text=True,
            timeout=30,
            preexec_fn=as_nobody,
            check=False,
        )
        assert denied.returncode == 1, (args, denied.stderr)
        assert "1: Operation not permitted" in denied.stderr
    lab.bootout(domain="gui/65534")
    assert processes_mentioning(str(lab.job)) == {}


# ---------------------------------------------------------------------------------------------
# The user domain: gui's SSH counterpart


def test_the_user_domain_works_without_a_gui_login(lab: Lab) -> None:
    """user/<uid> is what a Mac reached over SSH has; bootstrap works there when gui does not."""
    domain = f"user/{lab.uid}"
    path = lab.plist()
    result = lab.run("bootstrap", domain, str(path), LAUNCHCTL_STANDIN_NO_GUI="1")
    assert result.returncode == 0, result.stderr
    pid = lab.report()["pid"]
    shown = lab.run("print", f"{domain}/test.job")
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"{domain}/test.job = {{\n")
    for line in ["\ttype = LaunchAgent", f"\tdomain = {domain}", f"\tpid = {pid}"]:
        assert f"\n{line}\n" in shown.stdout, line
    assert lab.run("print", f"gui/{lab.uid}/test.job").returncode == 113  # another domain
    listed = lab.run("print", domain)
    assert listed.stdout.startswith(f"{domain} = {{\n\ttype = user\n\thandle = {lab.uid}\n")
    assert re.search(rf"\n\t\t +{pid} +0 \ttest.job\n", listed.stdout)

    lab.bootout(domain=domain)
    gone = lab.run("print", f"{domain}/test.job")
    assert gone.stderr == (
        f'Bad request.\nCould not find service "test.job" in domain for uid: {lab.uid}\n'
    )
    again = lab.run("bootout", f"{domain}/test.job")
    assert (again.returncode, again.stderr) == (3, "Boot-out failed: 3: No such process\n")
    unknown_uid = next(
        u for u in range(4_000_000, 4_000_100) if not any(p.pw_uid == u for p in pwd.getpwall())
    )
    missing = lab.run("print", f"user/{unknown_uid}/test.job")
    assert (missing.returncode, missing.stderr) == (
        112,
        f"Could not find domain for uid: {unknown_uid}\n",
    )


def test_user_name_is_ignored_outside_the_system_domain(lab: Lab) -> None:
    """launchd.plist(5): UserName and GroupName apply only in the privileged system domain."""
    lab.bootstrap(lab.plist(UserName="nobody", GroupName="nogroup"))
    report = lab.report()
    assert report["uid"] == lab.uid
    assert report["env"]["USER"] == pwd.getpwuid(lab.uid).pw_name
    assert "\tusername = " not in lab.printed()


# ---------------------------------------------------------------------------------------------
# The system domain: LaunchDaemons, root only, run as their UserName

SYSTEM_LABEL = "test.daemon"


@pytest.fixture
def system_lab(shared_lab: Lab) -> Iterator[Lab]:
    """A lab another user can enter, for LaunchDaemons: the job runs as nobody, under the
    system's python3; whatever a test loaded into the system domain is booted out after it."""
    try:
        yield shared_lab
    finally:
        shared_lab.run("bootout", f"system/{SYSTEM_LABEL}")
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: shared_lab.run("print", f"system/{SYSTEM_LABEL}").returncode == 113,
                what="the daemon to go",
            )


def daemon_plist(lab: Lab, **keys: Any) -> Path:
    """A LaunchDaemon for the reporting job: root:root 0644, as launchd wants it."""
    report = lab.dir / f"{SYSTEM_LABEL}.json"
    path = lab.plist(
        SYSTEM_LABEL,
        ProgramArguments=[SYSTEM_PYTHON, str(lab.job), str(report)],
        **keys,
    )
    os.chown(path, 0, 0)
    return path


def as_user(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """The stand-in run by nobody, a user who is not root."""
    return subprocess.run(
        [*lab.command, *args],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=as_nobody,
        check=False,
    )


def bootstrap_system(lab: Lab, path: Path) -> None:
    result = lab.run("bootstrap", "system", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


needs_system_python = pytest.mark.skipif(
    not Path(SYSTEM_PYTHON).exists(), reason=f"needs {SYSTEM_PYTHON}"
)


@needs_root
@needs_system_python
def test_a_daemon_runs_as_its_user_name_with_that_users_files(system_lab: Lab) -> None:
    lab = system_lab
    out = lab.dir / "daemon.out.log"
    path = daemon_plist(lab, UserName="nobody", StandardOutPath=str(out), KeepAlive=True)
    bootstrap_system(lab, path)

    report = lab.report(SYSTEM_LABEL)
    nobody = pwd.getpwnam("nobody")
    assert (report["uid"], report["gid"]) == (nobody.pw_uid, nobody.pw_gid)
    assert report["groups"] == sorted(os.getgrouplist("nobody", nobody.pw_gid))
    env = report["env"]
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == ("nobody", "nobody", nobody.pw_dir)
    assert env["SHELL"] == nobody.pw_shell
    assert env["XPC_SERVICE_NAME"] == SYSTEM_LABEL
    # launchd opens the log with the job's credentials: the file belongs to the user.
    wait_for(lambda: out.exists() and out.read_text(), what="the daemon's stdout")
    assert out.stat().st_uid == nobody.pw_uid

    shown = lab.run("print", f"system/{SYSTEM_LABEL}")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"system/{SYSTEM_LABEL} = {{\n")
    for line in [
        "\ttype = LaunchDaemon",
        f"\tpath = {path}",
        "\tstate = running",
        "\tdomain = system",
        "\tusername = nobody",
        f"\tpid = {report['pid']}",
        "\tproperties = keepalive | runatload | inferred program",
    ]:
        assert f"\n{line}\n" in text, line
    assert "\tgroup = " not in text  # only when the plist names a GroupName

    domain = lab.run("print", "system")
    assert domain.stdout.startswith("system = {\n\ttype = system\n\thandle = 0\n")
    assert re.search(rf"\n\t\t +{report['pid']} +0 \t{SYSTEM_LABEL}\n", domain.stdout)


@needs_root
@needs_system_python
@pytest.mark.parametrize(
    ("keys", "user", "group", "groups"),
    [
        ({"UserName": "nobody", "GroupName": "daemon"}, "nobody", "daemon", "initgroups"),
        (
            {"UserName": "nobody", "GroupName": "daemon", "InitGroups": False},
            "nobody",
            "daemon",
            "inherited",
        ),
        ({"GroupName": "daemon"}, "root", "daemon", "initgroups"),
    ],
    ids=["user-and-group", "no-initgroups", "group-alone-means-root"],
)
def test_a_daemons_group_name_and_init_groups(
    system_lab: Lab, keys: dict[str, Any], user: str, group: str, groups: str
) -> None:
    lab = system_lab
    bootstrap_system(lab, daemon_plist(lab, **keys))
    report = lab.report(SYSTEM_LABEL)
    gid = grp.getgrnam(group).gr_gid
    assert (report["uid"], report["gid"]) == (pwd.getpwnam(user).pw_uid, gid)
    assert report["env"]["USER"] == user
    if groups == "initgroups":
        assert report["groups"] == sorted(os.getgrouplist(user, gid))
    else:  # launchd does not touch the group list: the job keeps launchd's own (root's)
        assert report["groups"] == sorted(os.getgroups())
    assert f"\n\tgroup = {group}\n" in lab.run("print", f"system/{SYSTEM_LABEL}").stdout


@needs_root
@needs_system_python
def test_a_daemon_without_user_name_runs_as_root_without_home(system_lab: Lab) -> None:
    lab = system_lab
    bootstrap_system(lab, daemon_plist(lab, EnvironmentVariables={"FOO": "bar"}))
    report = lab.report(SYSTEM_LABEL)
    assert (report["uid"], report["gid"]) == (0, 0)
    env = report["env"]
    for name in ("HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "CALLER_ONLY"):
        assert name not in env, name
    assert env["PATH"] == "/usr/bin:/bin:/usr/sbin:/sbin"
    assert env["FOO"] == "bar"
    assert "\tusername = " not in lab.run("print", f"system/{SYSTEM_LABEL}").stdout


@needs_root
@needs_system_python
@pytest.mark.parametrize(
    ("keys", "logged"),
    [
        ({"UserName": "no-such-user-standin"}, 'getpwnam("no-such-user-standin") failed'),
        (
            {"UserName": "nobody", "GroupName": "no-such-group-standin"},
            'getgrnam("no-such-group-standin") failed',
        ),
    ],
    ids=["user", "group"],
)
def test_a_daemon_whose_user_or_group_does_not_exist_exits_3(
    system_lab: Lab, keys: dict[str, Any], logged: str
) -> None:
    """launchd accepts the plist, then the job's child logs getpwnam/getgrnam and exits ESRCH."""
    lab = system_lab
    bootstrap_system(lab, daemon_plist(lab, **keys))
    target = f"system/{SYSTEM_LABEL}"
    wait_for(lambda: "\tlast exit code = 3\n" in lab.run("print", target).stdout, what="exit 3")
    text = lab.run("print", target).stdout
    assert "\tstate = not running\n" in text
    assert "\truns = 1\n" in text
    log = next((lab.dir / "state" / "system").glob("job.*")) / "supervisor.log"
    assert logged in log.read_text()
    assert lab.starts(SYSTEM_LABEL) == []


@needs_root
@needs_system_python
def test_a_daemons_log_is_opened_with_its_users_credentials(system_lab: Lab) -> None:
    """A log path the job's user cannot create fails the spawn (78: EX_CONFIG), though root
    could have created it."""
    lab = system_lab
    private = lab.dir / "root-only"
    private.mkdir(mode=0o755)
    path = daemon_plist(lab, UserName="nobody", StandardErrorPath=str(private / "err.log"))
    bootstrap_system(lab, path)
    target = f"system/{SYSTEM_LABEL}"
    wait_for(lambda: "last exit code = 78: EX_CONFIG" in lab.run("print", target).stdout)
    assert not (private / "err.log").exists()
    assert lab.starts(SYSTEM_LABEL) == []


@needs_root
@needs_system_python
def test_kickstart_and_bootout_in_the_system_domain(system_lab: Lab) -> None:
    lab = system_lab
    bootstrap_system(lab, daemon_plist(lab, UserName="nobody"))
    target = f"system/{SYSTEM_LABEL}"
    first = lab.report(SYSTEM_LABEL)["pid"]
    restarted = lab.run("kickstart", "-k", "-p", target)
    assert restarted.returncode == 0, restarted.stderr
    second = int(restarted.stdout)
    assert second != first
    assert lab.report(SYSTEM_LABEL, pid=second)["uid"] == pwd.getpwnam("nobody").pw_uid

    assert lab.run("bootout", target).returncode == 0
    wait_for(lambda: lab.run("print", target).returncode == 113, what="the daemon to go")
    gone = lab.run("print", target)
    assert gone.stderr == (
        f'Bad request.\nCould not find service "{SYSTEM_LABEL}" in domain for system\n'
    )
    assert lab.run("kickstart", target).stderr == (
        f'Could not find service "{SYSTEM_LABEL}" in domain for system\n'
    )
    again = lab.run("bootout", target)
    assert (again.returncode, again.stderr) == (3, "Boot-out failed: 3: No such process\n")
    assert processes_mentioning(str(lab.job)) == {}


@needs_root
@needs_system_python
def test_only_root_changes_the_system_domain_but_anyone_reads_it(system_lab: Lab) -> None:
    lab = system_lab
    path = daemon_plist(lab, UserName="nobody")
    target = f"system/{SYSTEM_LABEL}"

    refused = as_user(lab, "bootstrap", "system", str(path))
    assert (refused.returncode, refused.stderr) == (
        1,
        "Bootstrap failed: 1: Operation not permitted\n",
    )
    assert lab.run("print", target).returncode == 113

    bootstrap_system(lab, path)
    pid = lab.report(SYSTEM_LABEL)["pid"]
    for args, message in [
        (["bootout", target], "Boot-out failed: 1: Operation not permitted\n"),
        (["bootout", "system", str(path)], "Boot-out failed: 1: Operation not permitted\n"),
        (
            ["kickstart", "-k", target],
            f'Could not kickstart service "{SYSTEM_LABEL}": 1: Operation not permitted\n',
        ),
        (["disable", target], "Could not disable service: 1: Operation not permitted\n"),
    ]:
        denied = as_user(lab, *args)
        assert (denied.returncode, denied.stderr) == (1, message), args

    # Anyone may read or query the system domain (launchctl(1)).
    shown = as_user(lab, "print", target)
    assert shown.returncode == 0, shown.stderr
    assert f"\n\tpid = {pid}\n" in shown.stdout
    assert as_user(lab, "print", "system").returncode == 0
    assert lab.starts(SYSTEM_LABEL) == [pid]  # nothing the user tried reached the job


@needs_root
@needs_system_python
def test_the_system_domain_refuses_a_plist_root_does_not_own(system_lab: Lab) -> None:
    lab = system_lab
    path = daemon_plist(lab, UserName="nobody")
    target = f"system/{SYSTEM_LABEL}"

    os.chown(path, 65534, 65534)  # the daemon's own user may not own it either
    result = lab.run("bootstrap", "system", str(path))
    assert result.returncode == 5
    assert result.stderr.splitlines() == [
        "Bootstrap failed: 5: Input/output error",
        f"launchctl stand-in: {path}: Path had bad ownership/permissions"
        " (owned by uid 65534, not root)",
    ]
    assert lab.run("print", target).returncode == 113

    os.chown(path, 0, 0)
    path.chmod(0o664)
    writable = lab.run("bootstrap", "system", str(path))
    assert writable.returncode == 5
    assert "Path had bad ownership/permissions (mode 0664: writable by group)" in writable.stderr
    assert lab.run("print", target).returncode == 113
    assert lab.starts(SYSTEM_LABEL) == []

    # root-owned, group not wheel, 0644: launchd loads it (Homebrew installs root:admin).
    os.chown(path, 0, 65534)
    path.chmod(0o644)
    bootstrap_system(lab, path)
    assert lab.report(SYSTEM_LABEL)["uid"] == 65534
