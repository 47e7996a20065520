# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Stands in for get-pip.py, which ansible-test downloads to bootstrap pip into the venvs of its
sanity tests, from a host this network cannot reach (tools/ecosystem puts this file where
ansible-test caches that download).

Called as get-pip.py is, through ansible-test's quiet_pip.py: `python get-pip.py [pip options]
pip==VERSION ... [--no-setuptools] [--no-wheel]`. It installs the interpreter's bundled pip with
ensurepip, then exactly the requested packages from the configured index (PyPI).
"""

from __future__ import annotations

import subprocess
import sys


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])


if __name__ == "__main__":
    main()
