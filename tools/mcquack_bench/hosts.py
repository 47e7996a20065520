# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The bench's test hosts (tests/testhost/testhost.py), Ansible runs against them with the
mcquack_bench callback, devpi's process on a host, and the /+api poller."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devpi_testclient import DIRECT
from mcquack_bench.plays import PlayRun
from mcquack_bench.settings import (
    BASE_VARS,
    CALLBACK_DIR,
    PLAYBOOK,
    PLAYBOOK_TIMEOUT,
    PORT,
    PREPARE,
    ROOT,
    START_POLL_INTERVAL,
    START_TIMEOUT,
    TESTHOST,
    TESTHOST_VARS,
    UNIT,
    BenchError,
    log,
)

EMPTY_PLAY = [{"name": "Empty play", "hosts": "devpi", "gather_facts": True, "tasks": []}]


@dataclass
class Host:
    name: str
    net: int
    address: str
    identity_file: str
    control_dir: Path
    inventory: Path

    @property
    def url(self) -> str:
        """devpi on this host, as this machine reaches it."""
        return f"http://{self.address}:{PORT}"

    @property
    def api(self) -> str:
        return f"{self.url}/+api"


def api_ok(url: str, timeout: float) -> bool:
    try:
        with DIRECT.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (OSError, http.client.HTTPException):
        return False


class Poller(threading.Thread):
    """Polls a URL every `interval` seconds until stopped or `limit` seconds have passed."""

    def __init__(self, url: str, interval: float, limit: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.limit = url, interval, limit
        self.samples: list[tuple[float, bool]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        begin = time.monotonic()
        tick = begin
        while not self._halt.is_set() and time.monotonic() - begin < self.limit:
            now = time.monotonic()
            self.samples.append((now, api_ok(self.url, timeout=1.0)))
            tick += self.interval
            delay = tick - time.monotonic()
            if delay > 0:
                self._halt.wait(delay)
            else:
                tick = time.monotonic()

    def halt(self) -> None:
        self._halt.set()
        self.join()


def downtime(samples: Sequence[tuple[float, bool]]) -> tuple[float, int]:
    """Sum of the intervals that start with a failed poll, and the number of outages."""
    total, outages = 0.0, 0
    for i, (t, ok) in enumerate(samples[:-1]):
        if not ok:
            total += samples[i + 1][0] - t
            if i == 0 or samples[i - 1][1]:
                outages += 1
    return total, outages


class Bench:
    """The test hosts of one bench run and what runs on them; `table` names each host role's
    host and net (measurements.HOSTS)."""

    def __init__(self, run_dir: Path, table: Mapping[str, tuple[str, int]]) -> None:
        self.run_dir = run_dir
        self.table = table
        self.hosts: dict[str, Host] = {}
        self.counter = 0
        # Short: the SSH control sockets live here (a UNIX socket path has at most 107 bytes).
        self.control_root = Path(tempfile.mkdtemp(prefix="mcqb-"))
        (run_dir / "empty-play.yml").write_text(json.dumps(EMPTY_PLAY, indent=2) + "\n")
        (run_dir / "base-vars.json").write_text(json.dumps(BASE_VARS, indent=2) + "\n")
        secrets_file = run_dir / "secrets.json"
        with os.fdopen(
            os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w"
        ) as f:
            json.dump({"devpi_root_password": secrets.token_urlsafe(18)}, f)
        self.env = dict(os.environ)
        venv_bin = ROOT / ".venv" / "bin"
        if venv_bin.is_dir():
            self.env["PATH"] = f"{venv_bin}{os.pathsep}{self.env.get('PATH', '')}"
        self.env.update(
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
            ANSIBLE_CALLBACKS_ENABLED="mcquack_bench",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PYTHONUNBUFFERED="1",
        )
        # What a client on this machine runs: pip from a venv of the system python, talking to
        # the test hosts directly (no proxy from the environment).
        self.direct_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.pip = run_dir / "client-venv" / "bin" / "pip"

    # --- test hosts --------------------------------------------------------------------------

    def testhost(self, *args: str, timeout: float = 300.0) -> str:
        argv = [sys.executable, str(TESTHOST), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise BenchError(
                f"{shlex.join(argv[1:])} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc.stdout

    def up(self, role: str) -> Host:
        name, net = self.table[role]
        self.counter += 1
        # Registered before it exists, so an interrupted `up` is still taken down.
        self.hosts[name] = Host(name, net, "", "", Path(), Path())
        data = json.loads(self.testhost("up", name, "--net", str(net)))
        control_dir = Path(tempfile.mkdtemp(prefix=f"{self.counter}-", dir=self.control_root))
        inventory = self.run_dir / f"inventory-{self.counter}-{name}.json"
        host = Host(name, net, data["address"], data["identity_file"], control_dir, inventory)
        hostvars = {
            "ansible_host": host.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": host.identity_file,
            "ansible_ssh_common_args": (
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
            ),
        }
        inventory.write_text(
            json.dumps({"all": {"children": {"devpi": {"hosts": {name: hostvars}}}}}, indent=2)
        )
        self.hosts[name] = host
        return host

    def down(self, host: Host) -> None:
        if host.control_dir != Path() and host.control_dir.is_dir():
            for socket_path in host.control_dir.iterdir():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", host.name],
                    capture_output=True, check=False, timeout=10,
                )  # fmt: skip
        self.testhost("down", host.name, timeout=120)
        self.hosts.pop(host.name, None)

    def down_all(self) -> None:
        for host in list(self.hosts.values()):
            try:
                self.down(host)
            except (BenchError, subprocess.TimeoutExpired) as error:
                log(f"could not remove {host.name}: {error}")
        shutil.rmtree(self.control_root, ignore_errors=True)

    @property
    def root_password(self) -> str:
        """The root password every converge of this run gives devpi (secrets.json)."""
        password: str = json.loads((self.run_dir / "secrets.json").read_text())[
            "devpi_root_password"
        ]
        return password

    def client_venv(self) -> None:
        """The venv of this machine's pip client (self.pip), made on first use."""
        if not self.pip.exists():
            venv = self.pip.parent.parent
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=120)

    def sh(self, host: Host, script: str, timeout: float = 60.0) -> str:
        return self.testhost("exec", host.name, "--", "sh", "-c", script, timeout=timeout)

    def main_pid(self, host: Host) -> int:
        return int(self.sh(host, f"systemctl show --property MainPID --value {UNIT}").strip())

    def venv_versions(self, host: Host) -> str:
        return self.sh(
            host,
            "/var/lib/devpi/venv/bin/python -c 'import importlib.metadata as m\n"
            'for n in ("devpi-server", "devpi-web"):\n'
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: print(n, None)'",
        ).strip()

    # --- Ansible -----------------------------------------------------------------------------

    def playbook(
        self,
        host: Host,
        playbook: Path,
        label: str,
        extra: dict[str, Any] | None = None,
        verbose: bool = False,
        with_vars: bool = True,
    ) -> PlayRun:
        self.counter += 1
        stem = f"{self.counter:03d}-{label}"
        report_path = self.run_dir / f"{stem}.report.json"
        log_path = self.run_dir / f"{stem}.log"
        argv = ["ansible-playbook", "-i", str(host.inventory), str(playbook)]
        if with_vars:
            argv += ["-e", f"@{TESTHOST_VARS}", "-e", f"@{self.run_dir / 'base-vars.json'}"]
            argv += ["-e", f"@{self.run_dir / 'secrets.json'}"]
            if extra:
                extra_path = self.run_dir / f"{stem}.vars.json"
                extra_path.write_text(json.dumps(extra, indent=2) + "\n")
                argv += ["-e", f"@{extra_path}"]
        if verbose:
            argv.append("-vvv")
        env = dict(self.env, MCQUACK_BENCH_REPORT=str(report_path))
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(host.control_dir)
        start = time.monotonic()
        proc = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT,
            check=False,
        )  # fmt: skip
        end = time.monotonic()
        output = proc.stdout + proc.stderr
        log_path.write_text(f"$ {shlex.join(argv)}\n{output}")
        if proc.returncode != 0:
            tail = "\n".join(output.splitlines()[-25:])
            raise BenchError(
                f"{label}: ansible-playbook failed ({proc.returncode}), {log_path}:\n{tail}"
            )
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return PlayRun(end - start, start, end, report, output, log_path)

    def prepare(self, host: Host) -> None:
        self.playbook(host, PREPARE, "prepare", with_vars=False)

    def converge(self, host: Host, label: str, extra: dict[str, Any] | None = None) -> PlayRun:
        run = self.playbook(host, PLAYBOOK, label, extra)
        if not api_ok(host.api, timeout=5.0):
            raise BenchError(f"{label}: converge ended but {host.api} does not answer ({run.log})")
        return run

    # --- devpi -------------------------------------------------------------------------------

    def restart(self, host: Host) -> tuple[float, float, float]:
        """Restart devpi: (start time, seconds to /+api answering, seconds for systemctl)."""
        before = self.main_pid(host)
        t0 = time.monotonic()
        self.sh(host, f"systemctl restart {UNIT}")
        returned = time.monotonic() - t0
        while time.monotonic() - t0 < START_TIMEOUT:
            if api_ok(host.api, timeout=1.0):
                answered = time.monotonic() - t0
                break
            time.sleep(START_POLL_INTERVAL)
        else:
            raise BenchError(f"devpi on {host.name} did not answer within {START_TIMEOUT:.0f} s")
        if self.main_pid(host) == before:
            raise BenchError(f"systemctl restart {UNIT} on {host.name} left MainPID {before}")
        return t0, answered, returned

    def started_at(self, host: Host) -> float:
        """When devpi's main process started, on this machine's monotonic clock (test hosts
        share the kernel, and systemd-nspawn gives them no time namespace)."""
        text = self.sh(
            host, f"systemctl show --property ExecMainStartTimestampMonotonic --value {UNIT}"
        )
        return int(text.strip()) / 1e6

    def process_at(self, host: Host, seconds: float) -> dict[str, float]:
        """process() read `seconds` after devpi's main process started."""
        time.sleep(max(0.0, self.started_at(host) + seconds - time.monotonic()))
        return self.process(host)

    def settle(self, host: Host, limit: float = 180.0) -> None:
        """Wait until devpi is idle (under 0.1 CPU seconds in 2 s), so that work it does in the
        background after a start (devpi-web loading PyPI's project list) does not disturb the
        next measurement."""
        begin = time.monotonic()
        last = self.process(host)["cpu"]
        while time.monotonic() - begin < limit:
            time.sleep(2.0)
            now = self.process(host)["cpu"]
            if now - last < 0.1:
                log(f"devpi on {host.name} idle after {time.monotonic() - begin:.0f} s")
                return
            last = now
        log(f"devpi on {host.name} still busy after {limit:.0f} s; going on")

    def process(self, host: Host) -> dict[str, float]:
        """devpi-server's RSS and peak RSS (MiB) and CPU seconds, read from /proc."""
        pid = self.main_pid(host)
        text = self.sh(host, f"cat /proc/{pid}/status; echo; cat /proc/{pid}/stat; getconf CLK_TCK")
        fields = dict(re.findall(r"^(VmRSS|VmHWM|Threads):\s+(\d+)", text, re.MULTILINE))
        stat_line = next(line for line in text.splitlines() if line.startswith(f"{pid} ("))
        stat = stat_line.rsplit(")", 1)[1].split()
        ticks = int(text.strip().splitlines()[-1])
        cpu = (int(stat[11]) + int(stat[12])) / ticks  # utime, stime (fields 14, 15)
        return {
            "rss": int(fields["VmRSS"]) / 1024,
            "hwm": int(fields["VmHWM"]) / 1024,
            "threads": float(fields["Threads"]),
            "cpu": cpu,
        }
