"""The mcquack.devpi.devpi_probe module: what the devpi role manages, read in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: devpi_probe
short_description: Read the state of files, symlinks and a service in one call
version_added: 0.1.0
author: mcquack.devpi developers
description:
  - Reports, for each given path, whether it exists, its type, mode, owner, the SHA-1 of a
    regular file's content and the target of a symlink (without following it); and whether a
    systemd unit is active and enabled, or a launchd job is loaded.
  - The devpi role runs it once at the start of a converge and skips every step whose result is
    already in place, so a no-op run costs one remote call instead of one per step.
  - Never changes anything. Python standard library only.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  paths:
    description: Paths to look at. Symlinks are reported, not followed.
    type: list
    elements: str
    default: []
  systemd_unit:
    description: A systemd unit (without C(.service)) whose active and enabled state to report.
    type: str
  launchd_target:
    description: A launchd service target (C(gui/<uid>/<label>)) whose loaded state to report.
    type: str
"""

EXAMPLES = r"""
- name: Read what is in place
  mcquack.devpi.devpi_probe:
    paths:
      - /var/lib/devpi/venv
      - /var/lib/devpi/devpi-server.yml
    systemd_unit: devpi
  register: state
"""

RETURN = r"""
paths:
  description: For each path, C(exists) and, when it exists, C(type) (C(file), C(directory), C(link) or
    C(other)), C(mode) (four octal digits), C(owner), C(sha1) (regular files) and C(link_target) (symlinks).
  type: dict
  returned: always
  sample: {"/var/lib/devpi/venv": {"exists": true, "type": "link", "mode": "0777", "owner": "devpi",
           "link_target": "/var/lib/devpi/venvs/devpi-server-6.20.3-web-5.1.1"}}
service:
  description: C(active) and C(enabled) for O(systemd_unit), or C(loaded) for O(launchd_target).
  type: dict
  returned: when O(systemd_unit) or O(launchd_target) is given
"""

import hashlib  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]  # noqa: E402


def probe_path(path: str) -> dict[str, Any]:
    """Describe one path without following a final symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    result: dict[str, Any] = {
        "exists": True,
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "owner": owner,
    }
    if stat.S_ISLNK(info.st_mode):
        result.update(type="link", link_target=os.readlink(path))
    elif stat.S_ISDIR(info.st_mode):
        result["type"] = "directory"
    elif stat.S_ISREG(info.st_mode):
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
        result.update(type="file", sha1=digest.hexdigest())
    else:
        result["type"] = "other"
    return result


def _succeeds(argv: list[str]) -> bool:
    try:
        return (
            subprocess.run(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            ).returncode
            == 0
        )
    except OSError:
        return False


def probe_service(systemd_unit: str | None, launchd_target: str | None) -> dict[str, bool] | None:
    if systemd_unit:
        return {
            "active": _succeeds(["systemctl", "is-active", "--quiet", systemd_unit]),
            "enabled": _succeeds(["systemctl", "is-enabled", "--quiet", systemd_unit]),
        }
    if launchd_target:
        return {"loaded": _succeeds(["launchctl", "print", launchd_target])}
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "str", "default": []},
            "systemd_unit": {"type": "str"},
            "launchd_target": {"type": "str"},
        },
        mutually_exclusive=[["systemd_unit", "launchd_target"]],
        supports_check_mode=True,
    )
    result: dict[str, Any] = {
        "changed": False,
        "paths": {path: probe_path(path) for path in module.params["paths"]},
    }
    service = probe_service(module.params["systemd_unit"], module.params["launchd_target"])
    if service is not None:
        result["service"] = service
    module.exit_json(**result)


if __name__ == "__main__":
    main()
