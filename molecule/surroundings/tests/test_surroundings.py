# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi behind a real Caddy with TLS at its public name, used by a build account through the
mcquack.devpi.client role and devpi-client, and through a PyPI outage (testinfra).

The outage is real: the controller drops every packet the test host sends beyond its own
subnet (PyPI, DNS), the way a cut uplink does, and lets them through again afterwards.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

NAME = "pypi.test"
PUBLIC = f"https://{NAME}"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
EBLUME_PASSWORD = "molecule-Eblume-Pw-2"
HOME = "/home/builder"
OUTAGE_TABLE = "mcquack_devpi_outage"


def sh(host: Any, command: str, user: str = "root") -> Any:
    """Run a shell command on the host, as root or as another account with its login env."""
    if user != "root":  # from the account's home: uv reads a uv.toml in the working directory
        command = f"sudo -u {user} -H bash -lc {shlex.quote('cd && ' + command)}"
    return host.run(command)


def ok(result: Any) -> str:
    assert result.rc == 0, f"rc={result.rc}\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


def https_get(host: Any, path: str, accept: str = "application/json") -> str:
    """A GET through Caddy with nothing but the system trust store (curl's default)."""
    return ok(sh(host, f"curl -sSf -H {shlex.quote('Accept: ' + accept)} {PUBLIC}{path}"))


def devpi_log_since(host: Any, since: str) -> str:
    return ok(sh(host, f"journalctl -u devpi --no-pager -o cat --since {shlex.quote(since)}"))


def host_now(host: Any) -> str:
    return ok(sh(host, "date '+%Y-%m-%d %H:%M:%S'")).strip()


def timed_pip_install(
    host: Any, index: str, *requirements: str, venv: str = "/var/tmp/pip"
) -> tuple[Any, float]:
    """A fresh venv, then a `pip install` through the public URL with pip's defaults (retries,
    timeout) and no local cache: its result and the seconds pip took. pip trusts the system
    store (Caddy's CA) through --cert."""
    ok(sh(host, f"rm -rf {venv} && python3 -m venv {venv}"))
    pip = (
        f"{venv}/bin/pip install --no-cache-dir --disable-pip-version-check --cert {BUNDLE} "
        f"--index-url {PUBLIC}/{index}/+simple/ {shlex.join(requirements)}"
    )
    clock = f"date +%s.%N >> {venv}.clock"
    result = sh(host, f"rm -f {venv}.clock; {clock}; {pip}; rc=$?; {clock}; exit $rc")
    started, ended = (float(t) for t in ok(sh(host, f"cat {venv}.clock")).split())
    return result, ended - started


def pip_install(host: Any, index: str, *requirements: str) -> Any:
    return timed_pip_install(host, index, *requirements)[0]


def test_caddy_serves_devpi_at_its_public_name(host: Any) -> None:
    api = json.loads(https_get(host, "/+api"))["result"]
    assert api["login"] == f"{PUBLIC}/+login"


def test_pages_give_the_public_https_urls_only(host: Any) -> None:
    """devpi_outside_url: every URL devpi writes is https://pypi.test/...; neither plain http
    nor the loopback address it listens on leaks."""
    assert pip_install(host, "root/pypi", "six").rc == 0  # so root/pypi has links for six
    pages = [
        ("/+api", "application/json"),
        ("/eblume/dev", "application/json"),
        ("/root/pypi/six", "application/json"),
        ("/root/pypi/+simple/six/", "text/html"),
        ("/eblume/dev/+simple/six/", "text/html"),
        ("/eblume/dev", "text/html"),
    ]
    for path, accept in pages:
        body = https_get(host, path, accept)
        for leak in ("http://", "127.0.0.1", "localhost", ":3141"):
            assert leak not in body, f"{path} ({accept}) has {leak!r}:\n{body[:2000]}"
    links = json.loads(https_get(host, "/root/pypi/six"))["result"]
    hrefs = [link["href"] for release in links.values() for link in release.get("+links", [])]
    assert hrefs and all(href.startswith(f"{PUBLIC}/root/pypi/+f/") for href in hrefs), hrefs


def test_pip_and_uv_install_through_the_proxy(host: Any) -> None:
    result, first = timed_pip_install(host, "root/pypi", "idna")
    assert result.rc == 0, result.stderr
    print(f"\nfirst install through the proxy (pip, idna, root/pypi): {first:.1f} s")
    assert pip_install(host, "eblume/dev", "packaging").rc == 0
    ok(sh(host, "rm -rf /var/tmp/uv && uv venv --quiet /var/tmp/uv"))
    for index, requirement in (("root/pypi", "iniconfig"), ("eblume/dev", "pluggy")):
        ok(sh(
            host,
            f"uv pip install --system-certs --no-cache --python /var/tmp/uv/bin/python "
            f"--index-url {PUBLIC}/{index}/+simple/ {requirement}",
        ))  # fmt: skip


def test_devpi_listens_on_loopback_only(host: Any) -> None:
    address = host.ansible.get_variables()["ansible_host"]
    with socket.create_connection((address, 443), timeout=5):
        pass  # Caddy answers from outside the host ...
    with pytest.raises(ConnectionRefusedError):  # ... devpi does not
        socket.create_connection((address, 3141), timeout=5).close()


def test_the_client_role_makes_bare_pip_and_uv_use_the_mirror(host: Any) -> None:
    """The build account's plain `pip install` and `uv pip install` (no index, no flags) go
    through devpi: devpi's log shows the requests for exactly those projects."""
    since = host_now(host)
    ok(sh(host, "rm -rf ~/venv && python3 -m venv ~/venv", user="builder"))
    # Debian 12's venv pip (23.0) verifies TLS with its own certifi bundle; pip 24.2 and later
    # use the system store, where Caddy's CA is, as the house's machines' pip does. Only this
    # bootstrap install names the bundle.
    ok(sh(host, f"~/venv/bin/pip install -q --no-cache-dir --cert {BUNDLE} -U 'pip>=24.2'",
          user="builder"))  # fmt: skip
    ok(sh(host, "~/venv/bin/pip install --no-cache-dir tomli-w", user="builder"))
    ok(sh(host, "uv pip install --no-cache --python ~/venv/bin/python attrs", user="builder"))
    log = devpi_log_since(host, since)
    assert "GET /root/pypi/+simple/tomli-w/" in log, log[-3000:]
    assert "GET /root/pypi/+simple/attrs/" in log, log[-3000:]


def test_devpi_client_uploads_over_https_and_the_upload_installs(host: Any) -> None:
    """devpi-client (installed through the mirror by the build account's pip) selects the index
    at its public https URL, logs in, uploads a package built here; it installs through the
    proxy and its devpi-web page loads there."""
    ok(sh(host, "~/venv/bin/pip install --no-cache-dir devpi-client build", user="builder"))
    project = f"{HOME}/hello"
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
            '[project]\nname = "surroundings-hello"\nversion = "1.0"\ndescription = "says hello"\n'
        ),
        "surroundings_hello/__init__.py": "GREETING = 'hello'\n",
    }
    ok(sh(host, f"mkdir -p {project}/surroundings_hello", user="builder"))
    for path, text in files.items():
        ok(sh(host, f"printf %s {shlex.quote(text)} > {project}/{path}", user="builder"))
    env = f"REQUESTS_CA_BUNDLE={BUNDLE} PATH=$HOME/venv/bin:$PATH"
    ok(sh(host, f"cd {project} && {env} python -m build --wheel", user="builder"))
    ok(sh(host, f"{env} devpi use {PUBLIC}/eblume/dev", user="builder"))
    ok(sh(host, f"{env} devpi login eblume --password {EBLUME_PASSWORD}", user="builder"))
    uploaded = ok(sh(host, f"cd {project} && {env} devpi upload dist/*.whl", user="builder"))
    assert "surroundings_hello-1.0-py3-none-any.whl" in uploaded, uploaded

    result = pip_install(host, "eblume/dev", "surroundings-hello==1.0")
    assert result.rc == 0, result.stderr
    page = https_get(host, "/eblume/dev/surroundings-hello/1.0", accept="text/html")
    assert "says hello" in page and "surroundings_hello-1.0-py3-none-any.whl" in page


@pytest.fixture
def outage(host: Any) -> Iterator[None]:
    """Drop, on the controller, everything the test host sends beyond its subnet."""
    address = host.ansible.get_variables()["ansible_host"]
    subnet = address.rsplit(".", 1)[0] + ".0/24"
    rules = (
        f"table inet {OUTAGE_TABLE} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter - 10; policy accept;\n"
        f"    ip saddr {address} ip daddr != {subnet} drop\n"
        "  }\n"
        "}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", OUTAGE_TABLE], check=True)


def test_through_a_pypi_outage(host: Any, outage: None) -> None:
    """Cached and private packages install; an uncached one fails fast with pip's own error;
    devpi stays up throughout."""
    pid = ok(sh(host, "systemctl show --property MainPID --value devpi")).strip()
    cut = sh(host, "curl -s -o /dev/null -m 5 -w '%{http_code}' https://pypi.org/simple/")
    assert cut.rc != 0 and cut.stdout.strip() != "200", "the outage does not cut PyPI off"
    for index, requirement in (
        ("root/pypi", "six"),  # cached by test_pages_give_the_public_https_urls_only
        ("eblume/dev", "idna"),
        ("eblume/dev", "surroundings-hello==1.0"),  # private
    ):
        result, seconds = timed_pip_install(host, index, requirement)
        print(f"\noutage: {requirement} through {index}: rc {result.rc} in {seconds:.1f} s")
        assert result.rc == 0, result.stderr

    result, waited = timed_pip_install(host, "root/pypi", "wcwidth")
    print(f"outage: uncached wcwidth through root/pypi: rc {result.rc} after {waited:.1f} s")
    assert result.rc != 0
    assert "No matching distribution found for wcwidth" in result.stderr, result.stderr
    assert waited < 30, f"pip waited {waited:.1f} s for a package devpi cannot fetch"
    assert https_get(host, "/+api")
    assert ok(sh(host, "systemctl show --property MainPID --value devpi")).strip() == pid


def test_after_the_outage_new_packages_install_without_a_restart(host: Any, wait_for: Any) -> None:
    """A project never asked for during the outage installs at once. One that was (wcwidth)
    fails until devpi's own upstream request from the outage has given up, which holds the
    project's lock (devpi_server/mirror.py): measured, bounded, and without a restart."""
    pid = ok(sh(host, "systemctl show --property MainPID --value devpi")).strip()
    result, seconds = timed_pip_install(host, "root/pypi", "tomli")
    assert result.rc == 0, result.stderr
    print(f"\nafter the outage: tomli (not asked for during it) installed in {seconds:.1f} s")
    waited = wait_for(lambda: pip_install(host, "root/pypi", "wcwidth").rc == 0, 300)
    print(f"after the outage: wcwidth (asked for during it) installs again after {waited:.0f} s")
    assert ok(sh(host, "systemctl show --property MainPID --value devpi")).strip() == pid


def test_client_role_absent_restores_the_previous_config(host: Any, playbook: Any) -> None:
    pip_conf = f"{HOME}/.config/pip/pip.conf"
    uv_toml = f"{HOME}/.config/uv/uv.toml"
    scenario = "molecule/surroundings/converge.yml"
    removed = playbook(scenario, {"client_state": "absent"})
    assert removed.returncode == 0, removed.tail()
    assert host.file(pip_conf).content_string == "[global]\ntimeout = 60\n"
    assert not host.file(uv_toml).exists
    again = playbook(scenario, {"client_state": "absent"})
    assert again.returncode == 0 and again.recap["changed"] == 0, again.tail()
