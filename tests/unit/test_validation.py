# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The role's input checks (tasks/validate.yml): what argument_specs cannot say, refused with a
message that names the variable, every failing check at once, before anything is changed."""

from __future__ import annotations

import ipaddress
import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook


def check(**role_vars: Any) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = run_playbook("validate_inputs.yml", role_vars)
    return result


def test_the_role_defaults_pass() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mirror_options_a_user_would_set_pass() -> None:
    result = check(devpi_root_pypi={"mirror_no_project_list": False, "mirror_cache_expiry": 3600})
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_failing_check_is_named_in_one_run() -> None:
    result = check(devpi_server_version="6.x", devpi_listen_port=70000, devpi_keep_venvs=1)
    assert result.returncode != 0
    output = " ".join(result.stdout.split())
    assert "devpi_server_version must be an exact version such as 6.20.3, got '6.x'" in output
    assert "devpi_listen_port must be between 1 and 65535, got 70000" in output
    assert "devpi_keep_venvs must be at least 2" in output


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        ({"devpi_web_version": "latest"}, "devpi_web_version must be an exact version"),
        ({"devpi_health_timeout": 0}, "devpi_health_timeout must be at least 1 second"),
        ({"devpi_open_files_limit": 64}, "devpi_open_files_limit must be at least 256"),
        ({"devpi_server_dir": "srv/devpi"}, "These must be absolute paths: devpi_server_dir"),
        ({"devpi_launchd_label": "-devpi"}, "devpi_launchd_label must be a reverse-DNS name"),
        (
            {"devpi_outside_url": "devpi.example.org"},
            "devpi_outside_url must be empty or an http:// or https:// URL",
        ),
        (
            {"devpi_server_options": {"port": 4000}},
            "devpi_server_options must not set port: use devpi_listen_port instead",
        ),
        # The argument specs name the missing option (meta/argument_specs.yml).
        ({"devpi_users": [{"email": "x@example.org"}]}, "missing required arguments: name"),
        (
            {
                "devpi_indexes": [{"name": "eblume/dev", "bases": ["root/pypi"], "tpye": "stage"}],
                "devpi_root_password": "pw",
            },
            "tpye. Supported parameters include",
        ),
        (
            {"devpi_indexes": [{"name": "eblume/dev"}]},
            "devpi_root_password is needed to declare devpi_users and devpi_indexes",
        ),
        ({"devpi_environment": {"BAD-NAME": "1"}}, "devpi_environment names must be shell-style"),
        (
            {"devpi_indexes": [{"name": "root/pypi"}], "devpi_root_password": "pw"},
            "root/pypi is managed through devpi_root_pypi",
        ),
        (
            {"devpi_root_pypi": {"mirror_no_projects_list": True}},
            "mirror_no_projects_list. Supported parameters include",
        ),
        (
            {"devpi_root_pypi": {"mirror_cache_expiry": "an hour"}},
            "mirror_cache_expiry",
        ),
        # Replication
        (
            {"devpi_role": "mirror"},
            "devpi_role must be one of: standalone, primary, replica, got: mirror",
        ),
        (
            {"devpi_role": "replica", "devpi_shared_secret": "s" * 44},
            "devpi_primary_url must be set when devpi_role is replica",
        ),
        (
            {"devpi_primary_url": "devpi-primary:3141"},
            "devpi_primary_url must be an http:// or https:// URL of a host name or address, with an optional "
            "port (1-65535) and path, such as http://devpi-primary.example.org:3141; got 'devpi-primary:3141'",
        ),
        (
            {"devpi_role": "replica", "devpi_primary_url": "http://devpi-primary:3141"},
            "A replica needs its primary's secret: set devpi_primary_host",
        ),
        (
            {"devpi_primary_host": "not-in-the-inventory"},
            "devpi_primary_host must be a host of this inventory, got 'not-in-the-inventory'",
        ),
        (
            {"devpi_shared_secret": "too-short"},
            "devpi_shared_secret must be one line of at least 32 characters",
        ),
        ({"devpi_replica_sync_timeout": 0}, "devpi_replica_sync_timeout must be at least 1 second"),
    ],
)
def test_a_bad_value_is_refused_by_name(role_vars: dict[str, Any], message: str) -> None:
    result = check(**role_vars)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout


def test_a_replica_with_its_primary_and_a_secret_passes() -> None:
    result = check(
        devpi_role="replica",
        devpi_primary_url="https://devpi-primary.example.org",
        devpi_primary_host="localhost",
        # Declared for every host: a replica skips them, so no root password is needed.
        devpi_users=[{"name": "eblume", "password": "pw"}],
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Addresses, URLs and names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("300.1.2.3", "devpi_listen_host must be an IPv4 address"),
        ("local host!", "devpi_listen_host must be an IPv4 address"),
        ("1.2.3", "devpi_listen_host must be an IPv4 address"),
        ("010.0.0.1", "devpi_listen_host must be an IPv4 address"),
        ("[::1]", "devpi_listen_host must be an IPv4 address"),
        ("fe80::1::2", "devpi_listen_host must be an IPv4 address"),
        ("a" * 64 + ".example.org", "devpi_listen_host must be an IPv4 address"),
        ("", "devpi_listen_host must be an IPv4 address"),
        # Syntactically good, but not something devpi-server could listen on here: asked on
        # the host (here the controller itself) as waitress would bind it.
        (
            "no-such-host.invalid",
            "devpi_listen_host must resolve on localhost to addresses of its own, which devpi-server "
            "binds: no-such-host.invalid does not resolve",
        ),
        (
            "192.0.2.1",
            "devpi_listen_host must resolve on localhost to addresses of its own, which devpi-server "
            "binds: 192.0.2.1 gives 192.0.2.1 (Cannot assign requested address)",
        ),
    ],
)
def test_a_bad_listen_address_is_refused_by_name(host: str, message: str) -> None:
    result = check(devpi_listen_host=host)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout


@pytest.mark.parametrize("host", ["localhost", "0.0.0.0", "*", "127.0.0.1"])
def test_a_listen_address_devpi_can_bind_passes(host: str) -> None:
    result = check(devpi_listen_host=host)
    assert result.returncode == 0, result.stdout + result.stderr
    asked = re.search(
        r"TASK \[[^\]]*Ask the host whether devpi_listen_host[^\]]*\][^\n]*\n(\w+)", result.stdout
    )
    assert asked, result.stdout
    # 127.0.0.1, 0.0.0.0 and * are on every host: no remote call for them.
    assert asked.group(1) == ("ok" if host == "localhost" else "skipping")


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        (
            {"devpi_outside_url": "https://local host!/"},
            "devpi_outside_url must be empty or an http:// or https:// URL",
        ),
        (
            {"devpi_outside_url": "https://devpi.example.org:70000"},
            "devpi_outside_url must be empty or an http:// or https:// URL",
        ),
        (
            {"devpi_outside_url": "https://user:pw@devpi.example.org"},
            "devpi_outside_url must be empty or an http:// or https:// URL",
        ),
        (
            {"devpi_primary_url": "http://300.1.2.3:3141"},
            "devpi_primary_url must be an http:// or https:// URL",
        ),
        (
            {"devpi_restrict_modify": "root,,alice"},
            "devpi_restrict_modify must be empty or a comma-separated list",
        ),
        ({"devpi_restrict_modify": "alice"}, "devpi_restrict_modify must name root"),
        (
            {"devpi_server_options": {"restrict-modify": "root,alice", "role": "primary"}},
            "devpi_server_options must not set restrict-modify, role: use devpi_restrict_modify, "
            "devpi_role instead",
        ),
        ({"devpi_uv_executable": "bin/uv"}, "devpi_uv_executable must be a command name"),
        ({"devpi_python": "./python3"}, "devpi_python must be a command name"),
        ({"devpi_service_user": "dev pi"}, "devpi_service_user must be an account name"),
        ({"devpi_ca_bundle": "certs.pem"}, "devpi_ca_bundle must be empty or an absolute path"),
        ({"devpi_systemd_unit": "devpi.service"}, "devpi_systemd_unit must be a unit name"),
        (
            {"devpi_primary_secret_file": "secret"},
            "These must be absolute paths: devpi_primary_secret_file",
        ),
        (
            {"devpi_install_environment": {"NO-GOOD": "1"}},
            "devpi_install_environment names must be",
        ),
        (
            {"devpi_users": [{"name": "a b"}], "devpi_root_password": "pw"},
            'devpi_users names must be devpi user names (no space and no ASCII symbol but - . @ _), got "a b"',
        ),
        (
            {
                "devpi_indexes": [{"name": "eblume"}, {"name": "eblume/de v"}],
                "devpi_root_password": "pw",
            },
            "devpi_indexes names must be user/index, each part a devpi name (no space and no ASCII symbol but - . @ _), "
            'got "eblume", "de v"',
        ),
    ],
)
def test_a_bad_address_url_or_name_is_refused_by_name(
    role_vars: dict[str, Any], message: str
) -> None:
    result = check(**role_vars)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout


def test_the_values_a_user_would_set_pass() -> None:
    result = check(
        devpi_outside_url="https://devpi.example.org:8443/devpi/",
        devpi_restrict_modify="root, alice, :admins",
        devpi_uv_executable="/opt/homebrew/bin/uv",
        devpi_python="python3.12",
        devpi_users=[{"name": "e.b-l_u@me"}],
        devpi_indexes=[{"name": "e.b-l_u@me/dev"}],
        devpi_root_password="pw",
        devpi_systemd_unit="devpi-main",
        devpi_server_options={"indexer-backend": "null", "restrict-modify-not": 1},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert check(devpi_restrict_modify="").returncode == 0


# An oracle for the patterns in vars/main.yml, written apart from them: Python's ipaddress for
# addresses, RFC 1123 labels for names, urllib for URLs.


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_hostname(text: str) -> bool:
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if not labels or any(not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", label) for label in labels):
        return False
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        return False
    return not labels[-1].isdigit()  # else getaddrinfo reads it as (part of) an IPv4 address


def is_listen_host(text: str) -> bool:
    if text == "*" or is_ipv4(text) or is_hostname(text):
        return True
    address, percent, zone = text.partition("%")
    return is_ipv6(address) and (not percent or re.fullmatch(r"[A-Za-z0-9_.~-]+", zone) is not None)


def is_url(text: str) -> bool:
    match = re.fullmatch(r"(https?)://([^/]*)(/.*)?", text)
    if not match or re.search(r"[\s?#]", text):
        return False
    netloc = match.group(2)
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or "%" in host or not is_ipv6(host):
            return False
    else:
        host, colon, rest = netloc.partition(":")
        rest = colon + rest
        if not (is_ipv4(host) or is_hostname(host)):
            return False
    if rest:
        port = rest[1:]
        return (
            rest.startswith(":") and port.isdigit() and port[0] != "0" and 1 <= int(port) <= 65535
        )
    return True


def is_devpi_name(text: str) -> bool:
    """devpi_server.model.is_valid_name, and not empty."""
    blocked = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f" + "".join(
        chr(c) for c in range(0x10, 0x21)
    )
    blocked += "!\"#$%&'()*+,/:;<=>?[\\]^`{|}~"
    return bool(text) and not any(c in blocked for c in text)


def candidates() -> list[str]:
    """Addresses, names and URLs, good and bad: hand-picked edge cases, then random IPv6
    addresses in every notation and mutations of them."""
    rng = random.Random(22)
    picked = [
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "300.1.2.3",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.04",
        "1..2.3",
        "*",
        "**",
        "",
        " ",
        "::",
        "::1",
        ":::",
        "1::",
        "::1:",
        ":1::",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1::2:3:4:5:6:7",
        "1:2:3:4:5:6:1.2.3.4",
        "::ffff:1.2.3.4",
        "::ffff:1.2.3.04",
        "::ffff:300.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "fe80::1%eth0",
        "fe80::1%",
        "fe80::1%eth 0",
        "12345::",
        "g::1",
        "[::1]",
        "FFFF::ffff",
        "localhost",
        "devpi",
        "devpi.example.org",
        "devpi.example.org.",
        "devpi..example.org",
        ".devpi",
        "-devpi",
        "devpi-",
        "dev-pi",
        "dev_pi",
        "local host!",
        "a" * 63,
        "a" * 64,
        "a" * 63 + ".b",
        "123",
        "123.",
        "123.example",
        "example.123",
        "1e100.net",
        "xn--4ca.example",
        "\u00e4.example",
        "https://devpi.example.org",
        "https://devpi.example.org/",
        "https://devpi.example.org/a/b",
        "http://127.0.0.1:3141",
        "http://[::1]:3141/",
        "http://[fe80::1%25eth0]/",
        "http://[::1",
        "http://::1:3141",
        "https://",
        "http://",
        "devpi.example.org",
        "ftp://devpi.example.org",
        "HTTP://devpi.example.org",
        "http://user@devpi.example.org",
        "http://x:0",
        "http://x:65535",
        "http://x:65536",
        "http://x:",
        "http://x:03141",
        "http://x:3141/path?q=1",
        "http://x/#top",
        "http://300.1.2.3/",
        "https://local host!/",
        "http://x y/",
        "http://x/ y",
        "http://x.",
        "eblume",
        "e.b-l_u@me",
        "root",
        "a b",
        "a/b",
        "a:b",
        ":admins",
        "\u00e4",
        "a\tb",
        "a~b",
    ]
    generated = []
    for _address in range(300):
        value = rng.getrandbits(128)
        # Runs of zero groups, so that "::" shows up in every position.
        for _group in range(rng.randrange(0, 8)):
            shift = 16 * rng.randrange(0, 8)
            value &= ~(0xFFFF << shift)
        address = ipaddress.IPv6Address(value)
        forms = [address.compressed, address.exploded, address.compressed.upper()]
        if rng.random() < 0.3:
            v4 = ipaddress.IPv4Address(rng.getrandbits(32))
            forms.append(
                address.compressed.rsplit(":", 2)[0] + ":" + str(v4)
                if address.compressed.count(":") > 2
                else f"::ffff:{v4}"
            )
        for form in forms:
            generated.append(form)
            position = rng.randrange(len(form) + 1)
            mutation = rng.choice([":", "::", "g", "0", ".", "1:"])
            generated.append(form[:position] + mutation + form[position:])
            if len(form) > 1:
                cut = rng.randrange(len(form))
                generated.append(form[:cut] + form[cut + 1 :])
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        generated += [
            str(v4),
            "http://" + str(v4) + ":" + str(rng.randrange(0, 70000)),
            f"http://[{address}]/",
        ]
    return sorted(set(picked + generated))


def test_the_address_patterns_agree_with_an_independent_oracle(tmp_path: Path) -> None:
    """One run matches every candidate against the role's patterns; each pattern accepts
    exactly what the oracle above accepts."""
    values = candidates()
    out = tmp_path / "matched.json"
    (tmp_path / "candidates.json").write_text(json.dumps(values))
    result = run_playbook(
        "match_patterns.yml",
        {"candidates_file": str(tmp_path / "candidates.json"), "out": str(out)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    matched = json.loads(out.read_text())
    oracles = {
        "ipv4": is_ipv4,
        "ipv6": lambda text: "%" not in text and is_ipv6(text),
        "hostname": is_hostname,
        "listen_host": is_listen_host,
        "url": is_url,
        "name": is_devpi_name,
    }
    for pattern, oracle in oracles.items():
        expected = {value for value in values if oracle(value)}
        got = set(matched[pattern])
        assert got == expected, (
            pattern,
            "accepted, wrongly:",
            sorted(got - expected)[:10],
            "refused, wrongly:",
            sorted(expected - got)[:10],
        )
    assert len(values) > 1000 and len(matched["ipv6"]) > 500
