# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The mcquack.devpi.devpi_probe module: what the devpi role manages, read in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: devpi_probe
short_description: Read the state of files, symlinks, a service and devpi-server in one call
version_added: 0.1.0
author: mcquack.devpi developers (@mcquack)
description:
  - Reports, for each given path, whether it exists, its type, mode, owner, the SHA-1 of a
    regular file's content and the target of a symlink (without following it); and whether a
    systemd unit is active and enabled, or a launchd job is loaded.
  - Given O(url), also whether devpi-server answers C(GET /+api) there and, given
    O(login_password), whether O(login_user) logs in with it (C(POST /+login)).
  - The devpi role runs it once at the start of a converge and skips every step whose result is
    already in place, so a no-op run costs one remote call instead of one per step. When nothing
    had to change, the probe's answer from devpi-server stands in for the health and root login
    checks.
  - Never changes anything.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcquack.devpi.server.action_group
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
    elements: path
    default: []
  systemd_unit:
    description: A systemd unit (without C(.service)) whose active and enabled state to report.
    type: str
  launchd_target:
    description: A launchd service target (C(gui/<uid>/<label>)) whose loaded state to report.
    type: str
  jobs:
    description:
      - Service-manager jobs whose state to report as RV(jobs), each under a name of the caller's
        choosing. A value with a C(/) is a launchd service target (C(gui/<uid>/<label>),
        C(user/<uid>/<label>), C(system/<label>)), read with C(launchctl print); any other value
        is a systemd unit with its suffix (C(devpi.service), C(devpi-backup.timer)), all of them
        read with one C(systemctl show).
    type: dict
    default: {}
  url:
    description:
      - The devpi-server's root URL. When given, the probe asks it C(GET /+api) and reports
        RV(server). Nothing is asked when it is left out.
    type: str
  service:
    description:
      - The job that runs the devpi-server at O(url) on this host (a systemd unit such as
        C(devpi.service), or a launchd service target such as C(gui/501/mcquack.eblume.devpi)).
      - When something answers O(url), its main process must hold the socket listening on
        O(url)'s port (Linux C(/proc), macOS C(lsof)); else the probe reports RV(server.impostor),
        names what holds the port, and sends no password. With O(wait), the wait ends at once
        when the job crash-loops (systemd C(auto-restart) or C(failed), launchd's job exiting
        non-zero) or its log (O(log_unit), O(log_path)) shows one of devpi-server's fatal start
        errors (the port in use, an invalid listen address, an incompatible server-dir).
    type: str
  login_user:
    description: The devpi user whose login to check with O(login_password).
    type: str
    default: root
  login_password:
    description:
      - A password to check for O(login_user) with C(POST /+login), once devpi-server has
        answered C(/+api). The login token it returns is thrown away.
    type: str
  indexes:
    description:
      - Indexes (C(USER/INDEX)) to compare with the options given for each, as
        M(mcquack.devpi.devpi_index) would, once devpi-server has answered C(/+api). Read
        anonymously; nothing is changed.
      - "Each value is a dict of M(mcquack.devpi.devpi_index)'s index options, for example
        C({\"root/pypi\": {\"mirror_no_project_list\": true}})."
    type: dict
    default: {}
  validate_certs:
    description: Verify devpi-server's TLS certificate when O(url) is C(https://).
    type: bool
    default: true
  ca_path:
    description: A PEM file of CA certificates to verify devpi-server's TLS certificate with.
    type: path
  timeout:
    description: Seconds to wait for each answer of devpi-server.
    type: int
    default: 5
  wait:
    description:
      - Seconds to keep asking C(GET /+api), every 0.1 s, until devpi-server answers, as after a
        (re)start. C(0) asks once. The login check, if asked for, follows the first answer.
    type: int
    default: 0
  replica_status:
    description:
      - Once devpi-server at O(url) answered, also read its C(/+status) and report, for a replica,
        RV(server.replica) - in particular how long ago it last heard from its primary (a healthy
        replica hears at least every 30 s; a replica the primary refuses never does).
    type: bool
    default: false
  nodeinfo:
    description:
      - A server-dir's C(.nodeinfo) (JSON that devpi-server writes), whose C(role) to report as
        RV(node), for example C(replica) on a server-dir initialised or run as a replica.
      - With O(url), also the identity the server answering there must have, its C(/+status)
        C(uuid) must be this file's, else the probe reports RV(server.impostor) and sends no
        password.
    type: path
  primary_url:
    description:
      - The root URL of this replica's primary. When given, once devpi-server at O(url) answered,
        the probe reads the primary's C(serial) from its C(/+status) and then asks O(url)'s
        C(/+status) every 0.2 s, for up to O(sync_wait) seconds, until the replica has had an
        answer from its primary (its C(primary-serial) is set) and its own C(serial) has reached
        the primary's. See RV(sync).
    type: str
  sync_wait:
    description: Seconds to wait for the replica to reach the primary's serial (with O(primary_url)).
    type: int
    default: 120
  log_unit:
    description:
      - "A systemd unit whose journal since the probe started is searched: with O(service) and
        O(wait), for devpi-server's fatal start errors; with O(primary_url), for devpi's C(403
        Forbidden: failed fetching) (the primary refused the replica: their secrets differ).
        Either ends the wait at once instead of letting it run out."
    type: str
  log_path:
    description: Like O(log_unit), for a log file (launchd); only what is written after the probe started is searched.
    type: path
seealso:
  - module: mcquack.devpi.devpi_index
  - plugin: mcquack.devpi.devpi_plan
    plugin_type: filter
  - plugin: mcquack.devpi.drift
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read what is in place
  mcquack.devpi.devpi_probe:
    paths:
      - /var/lib/devpi/venv
      - /var/lib/devpi/devpi-server.yml
    systemd_unit: devpi
    url: http://127.0.0.1:3141
    login_password: "{{ devpi_root_password }}"
  register: state

- name: Wait up to 90 s for devpi to answer after a restart
  mcquack.devpi.devpi_probe:
    url: http://127.0.0.1:3141
    wait: 90
  register: health
  failed_when: not health.server.answers
"""

RETURN = r"""
paths:
  description: What was found at each of O(paths), by path.
  type: dict
  returned: always
  sample: {"/var/lib/devpi/venv": {"exists": true, "type": "link", "mode": "0777", "owner": "devpi",
           "link_target": "/var/lib/devpi/venvs/devpi-server-6.20.3-web-5.1.1"}}
  contains:
    exists:
      description: Whether the path exists (a dangling symlink exists).
      type: bool
      returned: always
    type:
      description: C(file), C(directory), C(link) or C(other).
      type: str
      returned: when the path exists
    mode:
      description: The permission bits as four octal digits.
      type: str
      returned: when the path exists
      sample: "0640"
    owner:
      description: The owner's user name (the numeric uid when it has none).
      type: str
      returned: when the path exists
    sha1:
      description: The SHA-1 of the file's content.
      type: str
      returned: for regular files
    link_target:
      description: Where the symlink points, not followed.
      type: str
      returned: for symlinks
service:
  description: The state of O(systemd_unit) or O(launchd_target).
  type: dict
  returned: when O(systemd_unit) or O(launchd_target) is given
  sample: {"active": true, "enabled": true}
  contains:
    active:
      description: C(systemctl is-active) succeeded.
      type: bool
      returned: with O(systemd_unit)
    enabled:
      description: C(systemctl is-enabled) succeeded.
      type: bool
      returned: with O(systemd_unit)
    loaded:
      description: C(launchctl print) found the job.
      type: bool
      returned: with O(launchd_target)
jobs:
  description: The state of each of O(jobs), by its name.
  type: dict
  returned: always
  sample: {"devpi": {"loaded": true, "active": true, "enabled": true, "pid": 4242}}
  contains:
    loaded:
      description: The service manager knows the job (launchd has it loaded; systemd found its unit).
      type: bool
    active:
      description: The job runs (launchd C(state = running); systemd C(ActiveState=active), for a timer that it is waiting).
      type: bool
    enabled:
      description: The job starts by itself (systemd C(is-enabled); launchd, where a loaded job is, the same as RV(jobs.loaded)).
      type: bool
    pid:
      description: The process the job runs now (launchd C(pid), systemd C(MainPID)), or null.
      type: int
server:
  description: What devpi-server at O(url) answered.
  type: dict
  returned: when O(url) is given
  sample: {"answers": true, "seconds": 0.01, "login": true,
           "indexes": {"root/pypi": {"exists": true, "changes": {"mirror_no_project_list": true}}}}
  contains:
    answers:
      description: C(GET /+api) answered HTTP 200 with JSON.
      type: bool
      returned: always
    seconds:
      description: How long the probe asked (up to O(wait)).
      type: float
      returned: always
    error:
      description: Why the last attempt got no answer, why the start cannot succeed, or why what answers is not this host's devpi.
      type: str
      returned: when devpi-server did not answer
    fatal:
      description: The wait ended early because the start cannot succeed (see O(service)).
      type: bool
      returned: when that happened
    impostor:
      description: Something answers O(url), but it is not the devpi of O(service) / O(nodeinfo); nothing was sent to it with a password.
      type: bool
      returned: when that happened
    login:
      description:
        - True when O(login_user) logged in with O(login_password), false when devpi-server refused
          it (HTTP 401).
      type: bool
      returned: when O(login_password) is given and devpi-server answered
    login_error:
      description: Why the login request itself failed.
      type: str
      returned: when the login request failed
    indexes:
      description:
        - For each of O(indexes), C(exists) and C(changes), the given options whose value differs from
          the index's (all of them when it does not exist).
      type: dict
      returned: when O(indexes) is given and devpi-server answered
    indexes_error:
      description: Why the indexes could not be read or compared.
      type: str
      returned: when reading or comparing O(indexes) failed
    replica:
      description: What C(/+status) says about this replica (empty for a primary or standalone).
      type: dict
      returned: when O(replica_status) is true and devpi-server answered
      sample: {"serial": 12, "primary_serial": 12, "heard_from_primary_s": 4.2}
      contains:
        serial:
          description: The replica's serial.
          type: int
        primary_serial:
          description: The primary's serial as the replica last heard it (null before its first answer).
          type: int
        heard_from_primary_s:
          description: Seconds since the primary last answered the replica (null when it never has).
          type: float
node:
  description: What the server-dir's C(.nodeinfo) says.
  type: dict
  returned: when O(nodeinfo) is given
  sample: {"exists": true, "role": "replica"}
  contains:
    exists:
      description: Whether the file exists.
      type: bool
      returned: always
    role:
      description: C(standalone), C(primary), C(replica) (or C(master), the old name of primary).
      type: str
      returned: when the file exists and holds a role
    error:
      description: Why the file could not be read.
      type: str
      returned: when reading it failed
sync:
  description: How the replica at O(url) compares with its primary.
  type: dict
  returned: when O(primary_url) is given and devpi-server at O(url) answered
  sample: {"in_sync": true, "serial": 12, "primary_serial": 12, "seconds": 0.4, "refused": false}
  contains:
    in_sync:
      description: The replica heard from its primary and its serial reached the primary's within O(sync_wait).
      type: bool
      returned: always
    serial:
      description: The replica's serial at the end (C(-1) before its first change).
      type: int
      returned: when the replica answered C(/+status)
    primary_serial:
      description: The primary's serial, read once at the start.
      type: int
      returned: when the primary answered C(/+status)
    seconds:
      description: How long the wait took.
      type: float
      returned: always
    refused:
      description: devpi's log shows the primary refusing the replica (HTTP 403, the secrets differ).
      type: bool
      returned: always
    refusal:
      description: The log line that shows it.
      type: str
      returned: when RV(sync.refused)
    replica_in_sync_at:
      description: The replica's own C(replica-in-sync-at) (a UNIX time, or null).
      type: float
      returned: when the replica answered C(/+status)
    error:
      description: Why the replica or the primary could not be asked.
      type: str
      returned: when a C(/+status) request failed
"""

import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_api import (  # noqa: E402
    DevpiClient,
    DevpiError,
    desired_index_options,
    index_changes,
    split_index_name,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_host import (  # noqa: E402
    LogWatch,
    StartWatch,
    identity_problem,
    job_states,
    launchd_states,
    systemd_states,
)


def probe_path(module: Any, path: str) -> dict[str, Any]:
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
        result.update(type="file", sha1=module.digest_from_file(path, "sha1"))
    else:
        result["type"] = "other"
    return result


def probe_service(
    module: Any, systemd_unit: str | None, launchd_target: str | None
) -> dict[str, bool] | None:
    if systemd_unit:
        state = systemd_states(module, {"unit": systemd_unit})["unit"]
        return {"active": state["active"], "enabled": state["enabled"]}
    if launchd_target:
        return {"loaded": launchd_states(module, {"job": launchd_target})["job"]["loaded"]}
    return None


def probe_indexes(
    client: DevpiClient, indexes: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """For each index, whether it exists and which of the given options differ from its own."""
    found: dict[str, dict[str, Any]] = {}
    for name, options in indexes.items():
        user, index = split_index_name(name)
        desired = desired_index_options(options)
        current = client.get_index(user, index)
        if current is None:
            found[name] = {"exists": False, "changes": desired}
        else:
            found[name] = {"exists": True, "changes": index_changes(current, desired)}
    return found


def probe_server(
    url: str,
    login_user: str,
    login_password: str | None,
    timeout: int,
    wait: float = 0,
    indexes: dict[str, dict[str, Any]] | None = None,
    validate_certs: bool = True,
    ca_path: str | None = None,
    replica_status: bool = False,
    identity: Callable[[dict[str, Any] | None], str | None] | None = None,
    watch: StartWatch | None = None,
) -> dict[str, Any]:
    """Whether devpi-server answers /+api at url (asking every 0.1 s for up to wait seconds,
    ending early when watch says the start cannot succeed), whether it is this host's devpi
    (identity: why not, from its /+status), given a password whether it logs in, how the given
    indexes differ from their options, and (replica_status) what its /+status says about its
    replication. Nothing is sent with a password before identity has found no problem."""
    client = DevpiClient(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path)
    started = time.monotonic()
    next_watch = started + 1.0
    while True:
        try:
            client.request("GET", ("+api",))
            break
        except DevpiError as e:
            now = time.monotonic()
            if watch is not None and now >= next_watch:
                next_watch = now + 1.0
                reason = watch.fatal()
                if reason:
                    return _no_answer(started, reason, fatal=True)
            if now - started + 0.1 > wait:
                return _no_answer(started, str(e))
            time.sleep(0.1)
    result: dict[str, Any] = {"answers": True, "seconds": _since(started)}
    if identity is not None:
        try:
            status: dict[str, Any] | None = _status(client)
        except DevpiError:
            status = None
        problem = identity(status)
        if problem:
            return _no_answer(started, problem, impostor=True)
    if login_password is not None:
        try:
            result["login"] = client.password_works(login_user, login_password)
        except DevpiError as e:
            result["login_error"] = str(e)
    if indexes:
        try:
            result["indexes"] = probe_indexes(client, indexes)
        except DevpiError as e:
            result["indexes_error"] = str(e)
    if replica_status:
        try:
            result["replica"] = replica_summary(_status(client), time.time())
        except (DevpiError, KeyError, TypeError, ValueError) as e:
            result["replica"] = {"error": str(e)}
    return result


def replica_summary(status: dict[str, Any], now: float) -> dict[str, Any]:
    """A replica's serial, its primary's as it last heard it, and how long ago that was."""
    if str(status.get("role", "")).upper() != "REPLICA":
        return {}
    heard = status.get("update-from-primary-at")
    return {
        "serial": int(status["serial"]),
        "primary_serial": status.get("primary-serial"),
        "heard_from_primary_s": None if heard is None else round(now - float(heard), 2),
    }


def probe_nodeinfo(path: str) -> dict[str, Any]:
    """The role a server-dir's .nodeinfo records."""
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        return {"exists": False}
    except (OSError, ValueError) as e:
        return {"exists": True, "error": str(e)}
    result: dict[str, Any] = {"exists": True}
    if isinstance(info, dict) and isinstance(info.get("role"), str):
        result["role"] = info["role"]
    return result


# What devpi-server's replica thread logs when the primary answers /+changelog with 403: the
# primary could not verify the replica's signed request, because their secret files differ.
REFUSAL = "403 Forbidden: failed fetching"


def _status(client: DevpiClient) -> dict[str, Any]:
    _code, body = client.request("GET", ("+status",))
    result: dict[str, Any] = body.get("result") or {}
    return result


def probe_sync(
    replica: DevpiClient,
    primary: DevpiClient,
    wait: float,
    watch: LogWatch | None = None,
    interval: float = 0.2,
) -> dict[str, Any]:
    """Wait until the replica has heard from its primary (its /+status has a primary-serial) and
    its serial reaches the one the primary has now; end early when its log shows the primary
    refusing it."""
    started = time.monotonic()
    result: dict[str, Any] = {"in_sync": False, "refused": False}
    next_log_check = started + 1.0
    primary_serial: int | None = None
    while True:
        try:
            if primary_serial is None:
                primary_serial = int(_status(primary)["serial"])
                result["primary_serial"] = primary_serial
            status = _status(replica)
            result["serial"] = int(status.get("serial", -1))
            result["replica_in_sync_at"] = status.get("replica-in-sync-at")
            result.pop("error", None)
            # primary-serial is set once this replica process got a changelog answer from its
            # primary: a replica that already holds the data but is refused never gets one.
            contacted = status.get("primary-serial") is not None
            if contacted and result["serial"] >= primary_serial:
                result["in_sync"] = True
                break
        except (DevpiError, KeyError, TypeError, ValueError) as e:
            where = "the primary" if primary_serial is None else "the replica"
            result["error"] = f"{where}: {e}"
        now = time.monotonic()
        if watch is not None and now >= next_log_check:
            next_log_check = now + 1.0
            line = watch.newest(REFUSAL)
            if line:
                result.update(refused=True, refusal=line)
                break
        if now - started + interval > wait:
            break
        time.sleep(interval)
    result["seconds"] = _since(started)
    return result


def _no_answer(started: float, error: str, **why: bool) -> dict[str, Any]:
    """The server part of a probe that got no answer from this host's devpi, and why."""
    return {"answers": False, "seconds": _since(started), "error": error, **why}


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "systemd_unit": {"type": "str"},
            "launchd_target": {"type": "str"},
            "jobs": {"type": "dict", "default": {}},
            "service": {"type": "str"},
            "url": {"type": "str"},
            "login_user": {"type": "str", "default": "root"},
            "login_password": {"type": "str", "no_log": True},
            "indexes": {"type": "dict", "default": {}},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "timeout": {"type": "int", "default": 5},
            "wait": {"type": "int", "default": 0},
            "replica_status": {"type": "bool", "default": False},
            "nodeinfo": {"type": "path"},
            "primary_url": {"type": "str"},
            "sync_wait": {"type": "int", "default": 120},
            "log_unit": {"type": "str"},
            "log_path": {"type": "path"},
        },
        mutually_exclusive=[["systemd_unit", "launchd_target"]],
        supports_check_mode=True,
    )
    result: dict[str, Any] = {
        "changed": False,
        "paths": {path: probe_path(module, path) for path in module.params["paths"]},
    }
    service = probe_service(module, module.params["systemd_unit"], module.params["launchd_target"])
    if service is not None:
        result["service"] = service
    jobs = {str(name): str(target) for name, target in module.params["jobs"].items()}
    result["jobs"] = job_states(module, jobs)
    if module.params["nodeinfo"] is not None:
        result["node"] = probe_nodeinfo(module.params["nodeinfo"])
    log = LogWatch(module, module.params["log_unit"], module.params["log_path"])
    watch = log if module.params["primary_url"] is not None else None
    url, service, nodeinfo = (module.params[k] for k in ("url", "service", "nodeinfo"))
    if url is not None:
        identity = None
        if service or nodeinfo:

            def identity(status: dict[str, Any] | None) -> str | None:
                return identity_problem(module, url, status, service, nodeinfo)

        start = None
        if module.params["wait"] > 0 and service:
            start = StartWatch(module, url, service, log)
        try:
            result["server"] = probe_server(
                url,
                module.params["login_user"],
                module.params["login_password"],
                module.params["timeout"],
                module.params["wait"],
                module.params["indexes"],
                module.params["validate_certs"],
                module.params["ca_path"],
                module.params["replica_status"],
                identity,
                start,
            )
        except DevpiError as e:  # a url that is not http(s)://
            module.fail_json(msg=str(e))
        if watch is not None and result["server"]["answers"]:
            connection = {
                "timeout": module.params["timeout"],
                "validate_certs": module.params["validate_certs"],
                "ca_path": module.params["ca_path"],
            }
            try:
                result["sync"] = probe_sync(
                    DevpiClient(module.params["url"], **connection),
                    DevpiClient(module.params["primary_url"], **connection),
                    module.params["sync_wait"],
                    watch,
                )
            except DevpiError as e:  # a primary_url that is not http(s)://
                module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
