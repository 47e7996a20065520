# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Tests of testhost.py: its rules and renderings (anywhere), and a real host's life (as root).

The integration tests are marked `testhost`; they boot real systemd-nspawn guests and are
skipped, with the reason, when not root or when systemd-nspawn, debootstrap or nft is missing.
The first run builds the cached image (about a minute); later runs take seconds.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTHOST = HERE / "testhost.py"
sys.path.insert(0, str(HERE))

import testhost  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "devpi-default", "zz-smoke", "h1", "a" * testhost.NAME_MAX])
def test_good_names(name: str) -> None:
    assert testhost.validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "Devpi",
        "1abc",
        "-abc",
        "abc-",
        "a_b",
        "a.b",
        "a b",
        "ä",
        "a" * (testhost.NAME_MAX + 1),
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(testhost.TesthostError, match="bad host name"):
        testhost.validate_name(name)


@pytest.mark.parametrize("net", [testhost.NET_MIN, 11, testhost.NET_MAX])
def test_net_in_range(net: int) -> None:
    assert testhost.validate_net(net) == net


@pytest.mark.parametrize("net", [0, -1, 251, 255, 256])
def test_net_out_of_range(net: int) -> None:
    with pytest.raises(testhost.TesthostError, match="out of range: use 1 to 250"):
        testhost.validate_net(net)


@pytest.mark.parametrize("user", [None, "molecule", "ci_user", "a-b"])
def test_good_users(user: str | None) -> None:
    assert testhost.validate_user(user) == user


@pytest.mark.parametrize("user", ["root", "", "Alice", "1x", "a b", "x" * 33])
def test_bad_users(user: str) -> None:
    with pytest.raises(testhost.TesthostError, match="bad --user"):
        testhost.validate_user(user)


def test_addresses() -> None:
    assert testhost.host_address(11) == "10.213.11.1"
    assert testhost.guest_address(11) == "10.213.11.2"
    assert testhost.subnet(11) == ipaddress.IPv4Network("10.213.11.0/24")


def test_interface_names_fit_linux_limit_and_are_unique() -> None:
    names = [testhost.iface_name(net) for net in range(testhost.NET_MIN, testhost.NET_MAX + 1)]
    assert all(len(name) <= 15 for name in names)
    assert len(set(names)) == len(names)
    assert testhost.iface_name(11) == "mcqdevpi11"


def test_interface_name_rejects_bad_net() -> None:
    with pytest.raises(testhost.TesthostError):
        testhost.iface_name(0)


def test_nft_table_is_a_plain_identifier_and_one_to_one() -> None:
    assert testhost.nft_table("devpi-default") == "mcquack_devpi_devpi_default"
    longest = testhost.nft_table("a" * testhost.NAME_MAX)
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", longest)
    assert testhost.nft_table("a-b") != testhost.nft_table("ab")


def test_nft_ruleset_recreates_table_and_masquerades_only_its_subnet() -> None:
    ruleset = testhost.render_nft_ruleset("devpi-default", 11)
    lines = ruleset.splitlines()
    # add (no-op if present) + delete + create: one atomic transaction, no duplicate rules
    assert lines[0] == "table inet mcquack_devpi_devpi_default"
    assert lines[1] == "delete table inet mcquack_devpi_devpi_default"
    assert "type nat hook postrouting priority srcnat; policy accept;" in ruleset
    assert "ip saddr 10.213.11.0/24 ip daddr != 10.213.11.0/24 masquerade" in ruleset


def test_network_file_is_static_and_sorts_before_nspawn_default() -> None:
    text = testhost.render_network_file(42)
    assert "[Match]\nName=host0\n" in text
    assert "Address=10.213.42.2/24\n" in text
    assert "Gateway=10.213.42.1\n" in text
    assert sorted([testhost.NETWORK_FILE, "80-container-host0.network"])[0] == testhost.NETWORK_FILE


def test_hosts_and_sudoers() -> None:
    assert "127.0.1.1\tzz-smoke\n" in testhost.render_hosts("zz-smoke")
    assert testhost.render_sudoers("molecule") == "molecule ALL=(ALL:ALL) NOPASSWD: ALL\n"


def test_resolv_conf_drops_loopback_servers() -> None:
    text = testhost.guest_resolv_conf(
        "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n"
        "search example.org\noptions edns0 trust-ad\n"
    )
    assert "nameserver 10.0.0.1" in text
    assert "127.0.0.53" not in text and "::1" not in text
    assert "search example.org" in text and "options edns0 trust-ad" in text


def test_resolv_conf_without_reachable_server_is_an_error() -> None:
    with pytest.raises(testhost.TesthostError, match="no name server"):
        testhost.guest_resolv_conf("nameserver 127.0.0.53\n")


def test_recipe_digest_changes_with_the_recipe() -> None:
    data = testhost.recipe()
    assert testhost.recipe_digest() == testhost.recipe_digest(dict(data))
    assert testhost.recipe_digest() != testhost.recipe_digest({**data, "packages": ["systemd"]})
    assert testhost.recipe_digest() != testhost.recipe_digest({**data, "recipe_version": -1})


def test_debootstrap_command() -> None:
    argv = testhost.debootstrap_command(Path("/x/rootfs"), Path("/x/debs"))
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    include = next(arg for arg in argv if arg.startswith("--include=")).split("=", 1)[1]
    for package in ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3-venv"):
        assert package in include.split(",")
    assert argv[-3:] == ["bookworm", "/x/rootfs", testhost.MIRROR]


def test_nspawn_command_boots_with_private_veth_and_is_recognised() -> None:
    argv = testhost.nspawn_command("devpi-default", 11, Path("/s/devpi-default/rootfs"))
    for flag in ("--register=no", "--keep-unit", "--boot", "--console=passive"):
        assert flag in argv
    assert "--network-veth-extra=mcqdevpi11:host0" in argv
    host = testhost.parse_nspawn_cmdline(123, ["/usr/bin/systemd-nspawn", *argv[1:]])
    assert host == testhost.Nspawn(pid=123, name="devpi-default", net=11)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sleep", "--machine=x", "--network-veth-extra=mcqdevpi1:host0"],
        ["systemd-nspawn", "--machine=x"],
        ["systemd-nspawn", "--machine=x", "--network-veth"],
    ],
)
def test_other_processes_are_not_recognised(argv: list[str]) -> None:
    assert testhost.parse_nspawn_cmdline(1, argv) is None


def test_parse_passwd() -> None:
    text = "root:x:0:0:root:/root:/bin/bash\nmolecule:x:1000:1000::/home/molecule:/bin/bash\n"
    assert testhost.parse_passwd(text, "molecule") == (1000, 1000, "/home/molecule")
    with pytest.raises(testhost.TesthostError, match="not found"):
        testhost.parse_passwd(text, "nobody")


def test_instance_data_has_what_molecule_needs() -> None:
    data = testhost.instance_data("h1", 7, None, Path("/k/id_ed25519"), 99)
    assert data == {
        "name": "h1",
        "address": "10.213.7.2",
        "port": 22,
        "user": "root",
        "identity_file": "/k/id_ed25519",
        "leader_pid": 99,
    }
    assert testhost.instance_data("h1", 7, "molecule", Path("/k"), 1)["user"] == "molecule"


def test_overlay_options_refuse_paths_mount_cannot_take() -> None:
    good = testhost.overlay_options(Path("/c/img/rootfs"), Path("/s/h1"))
    assert good == "lowerdir=/c/img/rootfs,upperdir=/s/h1/upper,workdir=/s/h1/work"
    assert testhost.overlay_options(Path("/c/a:b/rootfs"), Path("/s/h1")) is None
    assert testhost.overlay_options(Path("/c/img/rootfs"), Path("/s,x/h1")) is None


def test_paths_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCQUACK_DEVPI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MCQUACK_DEVPI_STATE", str(tmp_path / "state"))
    assert testhost.identity_file() == tmp_path / "cache" / "testhost" / "id_ed25519"
    assert testhost.host_dir("h1") == tmp_path / "state" / "h1"
    monkeypatch.delenv("MCQUACK_DEVPI_STATE")
    assert testhost.state_root() == Path("/var/tmp/mcquack-devpi/hosts")


# ---------------------------------------------------------------------------------------------
# CLI behaviour that needs no root
# ---------------------------------------------------------------------------------------------


def test_exec_arguments_after_double_dash() -> None:
    args = testhost.parse_args(["exec", "h1", "--", "sh", "-c", "exit 3"])
    assert (args.name, args.cmd) == ("h1", ["sh", "-c", "exit 3"])


def test_up_needs_net() -> None:
    with pytest.raises(SystemExit):
        testhost.parse_args(["up", "h1"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "Bad_Name", "--net", "1"], "bad host name"),
        (["up", "h1", "--net", "0"], "out of range"),
        (["up", "h1", "--net", "251"], "out of range"),
        (["up", "h1", "--net", "1", "--user", "root"], "bad --user"),
        (["down", "../etc"], "bad host name"),
        (["exec", "h1"], None),
    ],
)
def test_bad_input_is_rejected_before_anything_happens(
    argv: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert testhost.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("testhost: error: ")
    if message:
        assert message in err


def test_not_root_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (
        ["image"],
        ["up", "h1", "--net", "1"],
        ["down", "h1"],
        ["exec", "h1", "--", "true"],
    ):
        assert testhost.main(argv) == 1
        assert "must run as root" in capsys.readouterr().err


def test_missing_tools_name_their_debian_packages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert testhost.main(["up", "h1", "--net", "1"]) == 1
    err = capsys.readouterr().err
    assert "missing systemd-nspawn, nft" in err
    assert "apt-get install --no-install-recommends" in err
    for package in ("systemd-container", "nftables", "iproute2", "util-linux", "openssh-client"):
        assert package in err
    with pytest.raises(testhost.TesthostError, match="debootstrap"):
        testhost.require_tools(["debootstrap"])


def test_integration_tests_say_why_they_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert integration_skip_reason() == "needs root (systemd-nspawn, nft, network namespaces)"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "debootstrap" else "/x")
    assert integration_skip_reason() == "needs debootstrap (tools/setup installs them)"


def test_script_is_executable_and_documents_itself() -> None:
    assert os.access(TESTHOST, os.X_OK)
    assert testhost.__doc__ and "systemd as PID 1" in testhost.__doc__
    result = subprocess.run(
        [sys.executable, str(TESTHOST), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("image", "up", "down", "exec", "list"):
        assert command in result.stdout


# ---------------------------------------------------------------------------------------------
# Integration: real hosts (root, systemd-nspawn, debootstrap, nft)
# ---------------------------------------------------------------------------------------------


def integration_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, nft, network namespaces)"
    missing = testhost.missing_tools(["systemd-nspawn", "debootstrap", "nft", "ssh"])
    if missing:
        return f"needs {', '.join(missing)} (tools/setup installs them)"
    return None


needs_testhost = pytest.mark.skipif(
    integration_skip_reason() is not None, reason=integration_skip_reason() or ""
)

# Nets the molecule scenarios do not use, so the tests can run while a scenario is up.
NAME, NET = "th-pytest", 248
OTHER_NAME, OTHER_NET = "th-pytest-2", 249


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(TESTHOST), *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"testhost.py {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def ssh(instance: dict[str, Any], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-i",
            instance["identity_file"],
            "-p",
            str(instance["port"]),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            f"{instance['user']}@{instance['address']}",
            command,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def nspawn_pids(name: str) -> list[int]:
    """Live (not zombie) processes whose command line names the host."""
    return [
        host.pid
        for host in testhost.running_hosts()
        if host.name == name and testhost.alive(host.pid)
    ]


def assert_nothing_left(name: str, net: int) -> None:
    assert nspawn_pids(name) == []
    assert testhost.nft_table(name) not in testhost.nft_tables()
    assert testhost.iface_name(net) not in testhost.links()
    assert not testhost.host_dir(name).exists()
    assert testhost.mounts_under(testhost.host_dir(name)) == []


@pytest.fixture
def clean_hosts() -> Iterator[None]:
    for name in (NAME, OTHER_NAME):
        cli("down", name)
    yield
    for name in (NAME, OTHER_NAME):
        cli("down", name, check=False)


@pytest.mark.testhost
@needs_testhost
@pytest.mark.usefixtures("clean_hosts")
def test_host_lifecycle() -> None:
    cli("image")
    started = time.monotonic()
    instance = json.loads(cli("up", NAME, "--net", str(NET)).stdout)
    up_seconds = time.monotonic() - started
    assert instance["name"] == NAME
    assert instance["address"] == f"10.213.{NET}.2"
    assert instance["port"] == 22 and instance["user"] == "root"
    assert Path(instance["identity_file"]).is_file()
    assert json.loads((testhost.host_dir(NAME) / "instance.json").read_text()) == instance
    assert up_seconds < 60

    state = ssh(instance, "systemctl is-system-running --wait")
    assert state.stdout.strip() in ("running", "degraded"), state.stdout + state.stderr
    pid1 = ssh(instance, "readlink /proc/1/exe; cat /proc/1/comm")
    assert pid1.returncode == 0, pid1.stderr
    assert "systemd" in pid1.stdout.split()[-1] and "/systemd" in pid1.stdout.split()[0]
    assert ssh(instance, "hostname").stdout.strip() == NAME
    pypi = ssh(instance, "curl -sSf https://pypi.org/simple/six/ -o /dev/null")
    assert pypi.returncode == 0, f"guest cannot reach PyPI over HTTPS: {pypi.stderr}"

    hostname = cli("exec", NAME, "--", "cat", "/etc/hostname")
    assert hostname.stdout.strip() == NAME
    failing = cli("exec", NAME, "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (failing.returncode, failing.stdout, failing.stderr) == (7, "out\n", "err\n")

    listed = json.loads(cli("list", "--json").stdout)
    assert [host["name"] for host in listed if host["name"] == NAME] == [NAME]

    again = cli("up", NAME, "--net", str(NET))  # idempotent with the same settings
    assert json.loads(again.stdout)["address"] == instance["address"]
    other = cli("up", NAME, "--net", str(OTHER_NET), check=False)
    assert other.returncode == 1 and "already up with --net" in other.stderr

    started = time.monotonic()
    down = cli("down", NAME)
    assert json.loads(down.stdout) == {"name": NAME, "removed": True}
    assert time.monotonic() - started < 45
    assert_nothing_left(NAME, NET)
    assert json.loads(cli("down", NAME).stdout)["removed"] is False
    assert cli("exec", NAME, "--", "true", check=False).returncode == 1


@pytest.mark.testhost
@needs_testhost
@pytest.mark.usefixtures("clean_hosts")
def test_two_hosts_subnet_conflict_user_and_stale_state() -> None:
    first = json.loads(cli("up", NAME, "--net", str(NET)).stdout)
    clash = cli("up", OTHER_NAME, "--net", str(NET), check=False)
    assert clash.returncode == 1
    assert f"already used by test host {NAME}" in clash.stderr
    assert not testhost.host_dir(OTHER_NAME).exists()

    second = json.loads(cli("up", OTHER_NAME, "--net", str(OTHER_NET), "--user", "molecule").stdout)
    assert second["user"] == "molecule"
    whoami = ssh(second, "id -un; sudo -n id -u")
    assert whoami.stdout.split() == ["molecule", "0"], whoami.stderr
    assert ssh(first, "hostname").stdout.strip() == NAME

    # A crash: the host's processes die, its state dir and nft table stay behind.
    (host,) = [h for h in testhost.running_hosts() if h.name == NAME]
    leader = testhost.guest_leader(host.pid)
    assert leader is not None
    os.kill(host.pid, 9)
    os.kill(leader, 9)
    assert testhost.wait_for(lambda: not nspawn_pids(NAME), 10)
    assert testhost.host_dir(NAME).exists()
    assert testhost.nft_table(NAME) in testhost.nft_tables()
    again = json.loads(cli("up", NAME, "--net", str(NET)).stdout)
    assert ssh(again, "systemctl is-system-running --wait").stdout.strip() in (
        "running",
        "degraded",
    )

    for name, net in ((NAME, NET), (OTHER_NAME, OTHER_NET)):
        cli("down", name)
        assert_nothing_left(name, net)
