# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Credentials only to our own devpi: with devpi stopped and another process listening on its
port (answering /+api as devpi does, and writing down every request it gets), a converge sends
it no password, fails within seconds and names the process; once the port is free again the
next converge brings devpi back."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

# tools/devpi_impostor.py, run on the test host: answers every request as devpi's /+api would
# and writes each one down, body included.
IMPOSTOR = (Path(__file__).resolve().parents[3] / "tools/devpi_impostor.py").read_text()
SEEN = "/var/tmp/impostor-requests.log"
ROOT_PASSWORD = "molecule-Root-Pw-1"


def test_an_impostor_on_the_port_gets_no_password_and_is_named(
    host: Any, devpi: Any, converge: Any, wait_for: Any
) -> None:
    host.check_output("systemctl stop devpi")
    host.check_output(f"rm -f {SEEN}")
    impostor = f"setsid python3 -c {shlex.quote(IMPOSTOR)} 3141 {SEEN} >/dev/null 2>&1 < /dev/null & echo $!"
    pid = int(host.check_output(impostor))
    try:
        wait_for(lambda: devpi.status("/+api") == 200, 10)
        run = converge()
        assert run.returncode != 0, run.tail()
        said = " ".join(run.output.split())
        assert "Something other than this host's devpi answers http://127.0.0.1:3141" in said
        assert f"port 3141 is held by PID {pid} (python3 -c" in said
        assert "No password or token was sent to it." in said
        print(f"the converge failed after {run.seconds:.1f} s")
        assert run.seconds < 10, f"took {run.seconds:.1f} s"
        seen = host.file(SEEN).content_string
        assert "/+login" not in seen and ROOT_PASSWORD not in seen, seen
        assert all(line.startswith("GET ") for line in seen.splitlines()), seen
    finally:
        host.run(f"kill {pid}")
    # The port is free again: systemd's restarts or the next converge bring devpi back.
    again = converge()
    assert again.returncode == 0, again.tail()
    assert devpi.status("/+api") == 200
    assert devpi.login_status("root", ROOT_PASSWORD) == 200
