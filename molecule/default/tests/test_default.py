# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Verify the devpi role on a real systemd host (testinfra, run by molecule over SSH)."""

from __future__ import annotations

import re
from typing import Any

ROOT_PASSWORD = "molecule-Root-Pw-1"
BASE = "/var/lib/devpi"


def test_unit_is_active_enabled_and_runs_unprivileged(host: Any) -> None:
    devpi = host.service("devpi")
    assert devpi.is_running
    assert devpi.is_enabled
    user = host.check_output("systemctl show --property User --value devpi")
    assert user == "devpi"
    pid = host.check_output("systemctl show --property MainPID --value devpi")
    assert host.check_output(f"ps -o user= -p {pid}").strip() == "devpi"


def test_no_restart_on_the_idempotent_run(host: Any) -> None:
    first = host.file("/var/tmp/devpi-first-pid").content_string.strip()
    now = host.check_output("systemctl show --property MainPID --value devpi")
    assert first not in ("", "0")
    assert now == first


def test_listens_on_loopback_3141_only(host: Any) -> None:
    listeners = host.check_output("ss -Hltn 'sport = :3141'").splitlines()
    local_addresses = {line.split()[3] for line in listeners}
    assert local_addresses == {"127.0.0.1:3141"}


def test_api_answers_json(devpi: Any) -> None:
    api = devpi.get("/+api")
    assert api["type"] == "apiconfig"
    assert api["result"]["login"].endswith("/+login")


def test_pip_install_through_root_pypi(host: Any, devpi: Any) -> None:
    result = devpi.pip_install("root/pypi", "six")
    assert result.rc == 0, result.stderr
    assert "Successfully installed six" in result.stdout
    # The file came through devpi: it is now in devpi's mirror cache.
    cached = host.run(f"find {BASE}/server-dir/+files -name 'six-*'")
    assert cached.stdout.strip(), "six is not in devpi's file store"


def test_venv_holds_exactly_the_pins_built_with_uv(host: Any) -> None:
    probe = host.check_output(
        f'{BASE}/venv/bin/python -c "import importlib.metadata as m; '
        "print(m.version('devpi-server'), m.version('devpi-web'))\""
    )
    assert probe.split() == ["6.20.3", "5.1.1"]
    installer = host.check_output(
        f"cat {BASE}/venv/lib/python3*/site-packages/devpi_server-6.20.3.dist-info/INSTALLER"
    )
    assert installer.strip() == "uv"


def test_service_runs_the_pinned_venv_through_the_stable_symlink(host: Any) -> None:
    venv = host.file(f"{BASE}/venv")
    assert venv.is_symlink
    assert venv.linked_to == f"{BASE}/venvs/devpi-server-6.20.3-web-5.1.1"
    assert host.file(f"{BASE}/venvs/devpi-server-6.20.3-web-5.1.1/.mcquack-devpi-complete").exists
    unit = host.file("/etc/systemd/system/devpi.service").content_string
    assert f"ExecStart={BASE}/venv/bin/devpi-server -c {BASE}/devpi-server.yml" in unit


def test_server_dir_and_secret_permissions(host: Any) -> None:
    server_dir = host.file(f"{BASE}/server-dir")
    assert server_dir.is_directory
    assert server_dir.user == "devpi"
    assert server_dir.mode == 0o700
    assert host.file(f"{BASE}/server-dir/.serverversion").exists
    secret = host.file(f"{BASE}/secret")
    assert secret.user == "devpi"
    assert secret.mode == 0o600
    assert len(secret.content_string.strip()) >= 32
    base = host.file(BASE)
    assert base.mode & 0o022 == 0, "devpi refuses a secret in a group/world-writable directory"


def test_unit_is_hardened(host: Any) -> None:
    unit = host.file("/etc/systemd/system/devpi.service").content_string
    for line in (
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        f"ReadWritePaths={BASE}/server-dir",
        "PrivateTmp=true",
        "Restart=on-failure",
        "LimitNOFILE=4096",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.M), line


def test_root_logs_in_with_the_password(devpi: Any) -> None:
    assert devpi.login_status("root", ROOT_PASSWORD) == 200
    assert devpi.login_status("root", "not-it") == 401


def test_password_is_nowhere_on_the_host(host: Any) -> None:
    places = ["/etc/systemd/system/devpi.service", f"{BASE}/devpi-server.yml", f"{BASE}/secret"]
    grep = host.run(f"grep -rlF -- '{ROOT_PASSWORD}' {' '.join(places)} /var/log /tmp /var/tmp")
    assert grep.stdout.strip() == ""
    journal = host.run(f"journalctl --no-pager | grep -cF -- '{ROOT_PASSWORD}'")
    assert journal.stdout.strip() == "0"


def test_declared_user_and_indexes_exist(devpi: Any) -> None:
    assert devpi.login_status("eblume", "molecule-Eblume-Pw-2") == 200
    user = devpi.get("/eblume")["result"]
    assert user["email"] == "eblume@example.org"
    assert set(user["indexes"]) == {"dev", "scratch"}
    assert user["indexes"]["dev"]["bases"] == ["root/pypi"]
    assert user["indexes"]["scratch"]["bases"] == ["eblume/dev"]


def test_pip_install_through_eblume_dev_resolves_via_its_base(devpi: Any) -> None:
    # eblume/dev has root/pypi as base; eblume/scratch reaches PyPI through eblume/dev.
    for index in ("eblume/dev", "eblume/scratch"):
        result = devpi.pip_install(index, "six")
        assert result.rc == 0, f"{index}: {result.stderr}"
        assert "Successfully installed six" in result.stdout


def test_a_no_op_converge_skips_every_step_after_one_probe(devpi: Any, converge: Any) -> None:
    """The fast path: the plan finds everything in place, so no step after the probe but the
    users and indexes reaches the host, and nothing changes or restarts."""
    pid = devpi.main_pid()
    run = converge()
    # Each step after the plan is one include, skipped as a whole: none of its tasks runs.
    run.assert_no_op()
    assert devpi.main_pid() == pid


def test_a_venv_that_lost_its_marker_is_completed_once(
    host: Any, devpi: Any, converge: Any
) -> None:
    """The active venv without its completeness marker: one converge completes it and writes
    the marker, so the next converge is the no-op fast path again."""
    marker = f"{BASE}/venvs/devpi-server-6.20.3-web-5.1.1/.mcquack-devpi-complete"
    host.check_output(f"rm {marker}")
    run = converge()
    assert run.returncode == 0, run.tail()
    assert host.file(marker).exists, "the marker was not written again"
    assert devpi.get("/+api")["type"] == "apiconfig"
    again = converge()
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()
    assert again.status["Bring what is not in place into place"] == "skipping", again.tail()


def test_root_pypi_is_the_mirror_the_role_declares(devpi: Any) -> None:
    pypi = devpi.get("/root/pypi?no_projects=")["result"]
    # devpi-init's own settings for root/pypi, plus the role's default devpi_root_pypi.
    assert pypi["type"] == "mirror"
    assert pypi["mirror_url"] == "https://pypi.org/simple/"
    assert pypi["mirror_web_url_fmt"] == "https://pypi.org/project/{name}/"
    assert (pypi["volatile"], pypi["title"]) == (False, "PyPI")
    assert pypi["mirror_no_project_list"] is True


def test_devpi_web_search_finds_a_package_uploaded_to_eblume_dev(devpi: Any, wait_for: Any) -> None:
    devpi.upload("eblume", "molecule-Eblume-Pw-2", "eblume/dev", "quackfinder", "1.0",
                 summary="finds ducks")  # fmt: skip

    def found(query: str) -> str:
        return str(devpi.host.check_output(
            f"curl -sSf -H 'Accept: text/html' '{devpi.api}/+search?query={query}'"
        ))  # fmt: skip

    # devpi-web indexes an upload in the background, within seconds.
    wait_for(lambda: "/eblume/dev/quackfinder" in found("quackfinder"), 60)
    assert "/eblume/dev/quackfinder" in found("ducks"), "the summary is searchable too"
    assert "/eblume/dev/quackfinder" not in found("nosuchduckproject")
    result = devpi.pip_install("eblume/dev", "quackfinder==1.0")
    assert result.rc == 0, result.stderr


def test_an_existing_root_pypi_gets_the_option_in_place_without_a_restart(
    devpi: Any, converge: Any
) -> None:
    """A server-dir made by devpi-init (or an older role) has root/pypi without the option: a
    converge sets it, reports one change, and devpi-server applies it without a restart."""
    config = devpi.get("/root/pypi?no_projects=")["result"]
    config.pop("projects", None)
    devpi.root_request("PATCH", "/root/pypi", {**config, "mirror_no_project_list": False},
                       ROOT_PASSWORD)  # fmt: skip
    assert devpi.get("/root/pypi?no_projects=")["result"]["mirror_no_project_list"] is False
    pid = devpi.main_pid()

    run = converge()
    assert run.returncode == 0, run.tail()
    assert run.recap["changed"] == 1, run.tail()
    assert devpi.get("/root/pypi?no_projects=")["result"]["mirror_no_project_list"] is True
    assert devpi.main_pid() == pid, "devpi was restarted"
    result = devpi.pip_install("root/pypi", "idna")
    assert result.rc == 0, result.stderr

    again = converge()
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()


def test_stop_and_start_entry_points(
    host: Any, devpi: Any, entry_point: Any, converge: Any
) -> None:
    """playbooks/devpi_stop.yml and devpi_start.yml (tasks_from: stop / start): stop frees the
    port and a second stop is ok; start brings devpi back and a second start is ok; after a stop
    a converge brings it back; nothing is lost on the way."""
    stopped = entry_point("stop")
    assert stopped.returncode == 0, stopped.tail()
    assert stopped.recap["changed"] == 1, stopped.tail()
    assert not host.service("devpi").is_running
    assert host.service("devpi").is_enabled, "stop must leave devpi to start at boot"
    assert not host.socket("tcp://127.0.0.1:3141").is_listening
    again = entry_point("stop")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()

    started = entry_point("start")
    assert started.returncode == 0, started.tail()
    assert started.recap["changed"] == 1, started.tail()
    assert devpi.status("/+api") == 200, "start ends with devpi answering"
    again = entry_point("start")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()

    assert entry_point("stop").returncode == 0
    run = converge()
    assert run.returncode == 0, run.tail()
    assert run.status["Start, restart or reload devpi.service"] == "changed", run.tail()
    assert devpi.status("/+api") == 200
    assert devpi.login_status("eblume", "molecule-Eblume-Pw-2") == 200
    assert "quackfinder" in devpi.get("/eblume/dev")["result"]["projects"]
    result = devpi.pip_install("eblume/dev", "quackfinder==1.0")
    assert result.rc == 0, result.stderr
