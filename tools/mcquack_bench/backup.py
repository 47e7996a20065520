# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""backup: a host converged with devpi_backup_enabled and a data set (BACKUP_PACKAGES uploaded
projects, a few PyPI projects cached); the backup job through systemd while this machine polls
/+api, the new export's size, and devpi-import of it (the restore step) into a throwaway
server-dir."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import devpi_testclient
from mcquack_bench.context import Context
from mcquack_bench.hosts import Poller, downtime
from mcquack_bench.settings import PLAYBOOK_TIMEOUT, POLL_INTERVAL, log

# The data set: BACKUP_PACKAGES projects uploaded to bench/dev, one wheel of BACKUP_WHEEL_KIB
# of incompressible data each, plus BACKUP_MIRRORED in root/pypi's cache.
BACKUP_PACKAGES = 100
BACKUP_WHEEL_KIB = 64
BACKUP_MIRRORED = ("six", "idna", "certifi", "packaging", "urllib3")
# Runs its arguments as a command on a host and prints the seconds it took.
TIMED = "import subprocess, sys, time\nt = time.monotonic()\nsubprocess.run(sys.argv[1:], check=True, capture_output=True)\nprint(time.monotonic() - t)"
# Run on the host as root (API PASSWORD COUNT KIB): the user bench and its index bench/dev,
# then COUNT uploads as twine makes them, through the devpi test client.
SEED = devpi_testclient.script(
    r"""
import os, sys
api, password, count, kib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
devpi = DevpiClient(api, timeout=None)
devpi.login("root", password).call("PUT", "/bench", {"password": "bench-Pw-1"})
bench = devpi.login("bench", "bench-Pw-1")
bench.call("PUT", "/bench/dev", {"bases": ["root/pypi"]})
for n in range(count):
    name = f"benchpkg{n:03d}"
    bench.upload("bench/dev", name, "1.0", files={f"{name}/data.bin": os.urandom(kib * 1024)})
print(count)
"""
)


def measure(context: Context) -> None:
    """A host converged with backups on and the test data set; then, --runs times, the backup
    job through systemd while this machine polls /+api, and devpi-import of the new export (the
    restore step, as restore.yml runs it) into a throwaway server-dir on the same host."""
    bench, results, runs = context.bench, context.results, context.runs
    host = bench.up("backup")
    try:
        bench.prepare(host)
        # Backups are off by default; turning them on is what this measures. devpi_backup_keep:
        # every run's export stays until the host is removed.
        bench.converge(host, "backup-first", {"devpi_backup_enabled": True,
                                              "devpi_backup_keep": runs + 1})  # fmt: skip
        seed = shlex.join(["python3", "-c", SEED, "http://127.0.0.1:3141", bench.root_password,
                           str(BACKUP_PACKAGES), str(BACKUP_WHEEL_KIB)])  # fmt: skip
        bench.sh(host, seed, timeout=600)
        simple = f"{host.url}/root/pypi/+simple/"
        bench.client_venv()
        target = Path(tempfile.mkdtemp(prefix="backup-mirror-", dir=bench.run_dir))
        subprocess.run(
            [str(bench.pip), "--isolated", "download", "--quiet", "--no-cache-dir", "--no-deps",
             "--disable-pip-version-check", "--dest", str(target), "--index-url", simple,
             "--trusted-host", host.address, *BACKUP_MIRRORED],
            capture_output=True, text=True, timeout=300, check=True, env=bench.direct_env,
        )  # fmt: skip
        shutil.rmtree(target, ignore_errors=True)
        bench.settle(host)
        server_kib = float(bench.sh(host, "du -sk /var/lib/devpi/server-dir").split()[0])
        results.add("backup.server_dir", "KiB", "the server-dir with the test data set", server_kib)
        results.facts["backup_data"] = (
            f"{BACKUP_PACKAGES} uploaded projects of {BACKUP_WHEEL_KIB} KiB each and "
            f"{len(BACKUP_MIRRORED)} PyPI projects in root/pypi's cache"
        )
        for i in range(runs):
            before = set(bench.sh(host, "ls /var/lib/devpi/backups").split())
            poller = Poller(host.api, POLL_INTERVAL, PLAYBOOK_TIMEOUT)
            poller.start()
            t0 = time.monotonic()
            try:
                bench.sh(host, "systemctl start devpi-backup.service", timeout=900)
            finally:
                took = time.monotonic() - t0
                poller.halt()
            (export,) = set(bench.sh(host, "ls /var/lib/devpi/backups").split()) - before
            path = f"/var/lib/devpi/backups/{export}"
            kib = float(bench.sh(host, f"du -sk {path}").split()[0])
            lost, _outages = downtime(poller.samples)
            # The restore step: devpi-import as restore.yml runs it, timed on the host.
            importing = shlex.join(
                [
                    "python3",
                    "-c",
                    TIMED,
                    "/var/lib/devpi/venv/bin/devpi-import",
                    "--no-events",
                    "--serverdir",
                    "/var/tmp/bench-restore",
                    path,
                ]
            )
            restored = bench.sh(host, f"rm -rf /var/tmp/bench-restore && {importing} && "
                                "rm -rf /var/tmp/bench-restore", timeout=900)  # fmt: skip
            restore = float(restored.strip())
            results.add("backup.job", "s", "systemctl start devpi-backup.service (export, "
                        "import check, fsck, rename)", took)  # fmt: skip
            results.add("backup.export_size", "KiB", "the new export (mirrored files not included)",
                        kib)  # fmt: skip
            results.add("backup.downtime", "s", "of which /+api did not answer (0.1 s polls)", lost)
            results.add("backup.restore_import", "s", "devpi-import of that export (the restore "
                        "step) into an empty server-dir", restore)  # fmt: skip
            log(f"backup run {i + 1}/{runs}: job {took:.2f} s, export {kib:.0f} KiB, "
                f"down {lost:.2f} s, import {restore:.2f} s")  # fmt: skip
    finally:
        bench.down(host)
