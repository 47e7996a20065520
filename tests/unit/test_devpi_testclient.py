# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The devpi test client (tools/devpi_testclient.py) against a real devpi-server: logins, JSON
requests, wheels built in memory, uploads, simple pages, pip downloads, no proxy from the
environment, and the same code run as a script, as the scenarios run it on a test host."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules import devpi_testserver

import devpi_testclient
from devpi_testclient import DevpiClient, DevpiError, pip_download, script, wheel

# The session's real devpi-server (a fixture), as the module tests get it from their conftest.
devpi = devpi_testserver.devpi
# A proxy that is not there: what a client that used the environment's proxies would hit.
DEAD_PROXY = "http://127.0.0.1:9"


def without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def make_user(
    server: devpi_testserver.DevpiServer, user: str, index: str, **options: object
) -> DevpiClient:
    """user with password f"{user}-pw" and its index user/index: the user's client."""
    root = DevpiClient(server.url).login("root", server.root_password)
    root.call("PUT", f"/{user}", {"password": f"{user}-pw"})
    client = DevpiClient(server.url).login(user, f"{user}-pw")
    client.call("PUT", f"/{user}/{index}", {"type": "stage", "bases": [], **options})
    return client


def test_a_login_sends_the_user_s_token_as_devpi_client_does(
    devpi: devpi_testserver.DevpiServer,
) -> None:
    client = DevpiClient(devpi.url + "/").login("root", devpi.root_password)
    assert client.url == devpi.url
    assert client.auth is not None
    user, token = base64.b64decode(client.auth).decode().split(":", 1)
    assert user == "root" and token
    # Only a logged-in root may change root's settings.
    assert client.request("PATCH", "/root", {"email": "root@example.org"})[0] == 200
    assert DevpiClient(devpi.url).request("PATCH", "/root", {"email": "x@example.org"})[0] in (
        401,
        403,
    )
    assert devpi.user("root")["email"] == "root@example.org"


def test_a_wrong_password_is_a_devpi_error_with_the_status(
    devpi: devpi_testserver.DevpiServer,
) -> None:
    with pytest.raises(DevpiError) as refused:
        DevpiClient(devpi.url).login("root", "not-the-password")
    assert refused.value.status == 401
    assert isinstance(refused.value, OSError)  # caught where urllib's HTTPError would be
    assert f"POST {devpi.url}/+login: HTTP 401" in str(refused.value)


def test_request_answers_any_status_and_call_only_success(
    devpi: devpi_testserver.DevpiServer,
) -> None:
    client = DevpiClient(devpi.url)
    status, payload = client.request("GET", "/nobody-here")
    assert status == 404 and "message" in payload
    with pytest.raises(DevpiError) as missing:
        client.call("GET", "/nobody-here")
    assert missing.value.status == 404 and missing.value.payload == payload
    api = client.call("GET", "/+api")["result"]
    assert api["login"] == f"{devpi.url}/+login"


def test_json_bodies_make_users_and_indexes(devpi: devpi_testserver.DevpiServer) -> None:
    client = make_user(devpi, "tcuser", "dev", volatile=False)
    assert devpi.user("tcuser") is not None
    index = devpi.index("tcuser/dev")
    assert index is not None and index["type"] == "stage" and index["volatile"] is False
    assert client.call("GET", "/tcuser/dev")["result"]["projects"] == []


def test_a_wheel_carries_its_metadata_and_a_record_of_every_file() -> None:
    name, data = wheel("my-pkg", "2.0", "what it is")
    assert name == "my_pkg-2.0-py3-none-any.whl"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {path: archive.read(path) for path in archive.namelist()}
    assert files["my_pkg/__init__.py"] == b"VERSION = '2.0'\n"
    metadata = files["my_pkg-2.0.dist-info/METADATA"].decode()
    assert metadata == "Metadata-Version: 2.1\nName: my-pkg\nVersion: 2.0\nSummary: what it is\n"
    assert "Tag: py3-none-any\n" in files["my_pkg-2.0.dist-info/WHEEL"].decode()
    record = files.pop("my_pkg-2.0.dist-info/RECORD").decode().splitlines()
    assert record[-1] == "my_pkg-2.0.dist-info/RECORD,,"
    for line in record[:-1]:
        path, digest, size = line.split(",")
        expected = base64.urlsafe_b64encode(hashlib.sha256(files[path]).digest()).rstrip(b"=")
        assert digest == "sha256=" + expected.decode() and int(size) == len(files[path])
    assert len(record) - 1 == len(files)

    _name, data = wheel("blob", "1", files={"blob/data.bin": b"\0" * 1024})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [
            "blob-1.dist-info/METADATA",
            "blob-1.dist-info/RECORD",
            "blob-1.dist-info/WHEEL",
            "blob/data.bin",
        ]
        assert "Summary" not in archive.read("blob-1.dist-info/METADATA").decode()


def test_an_upload_is_on_the_simple_page_and_pip_installs_and_downloads_it(
    devpi: devpi_testserver.DevpiServer, tmp_path: Path
) -> None:
    client = make_user(devpi, "uploader", "plain")
    client.upload("uploader/plain", "tiny-pkg", "1.0", "a tiny package")
    client.upload("uploader/plain", "tiny-pkg", "1.1")
    project = client.call("GET", "/uploader/plain/tiny-pkg")["result"]
    assert sorted(project) == ["1.0", "1.1"]
    assert project["1.0"]["summary"] == "a tiny package"
    links = [link["href"] for link in project["1.1"]["+links"]]
    assert [href.rsplit("/", 1)[-1] for href in links] == ["tiny_pkg-1.1-py3-none-any.whl"]
    page = DevpiClient(devpi.url).simple_page("uploader/plain", "tiny-pkg")
    assert "tiny_pkg-1.0-py3-none-any.whl" in page and "tiny_pkg-1.1-py3-none-any.whl" in page

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "--disable-pip-version-check",
         "--retries", "0", "--index-url", f"{devpi.url}/uploader/plain/+simple/", "tiny-pkg==1.0"],
        capture_output=True, text=True, timeout=300, check=False, env=without_proxies(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tiny_pkg; print(tiny_pkg.VERSION)"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert version == "1.0\n"
    # pip download, as the scenarios' client loops run it.
    pip, simple = str(venv / "bin" / "pip"), f"{devpi.url}/uploader/plain/+simple/"
    assert pip_download(pip, simple, "tiny-pkg==1.1", str(tmp_path / "dl"))
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["tiny_pkg-1.1-py3-none-any.whl"]
    assert not pip_download(pip, simple, "tiny-pkg==9.9", str(tmp_path / "dl"))


def test_an_upload_devpi_refuses_is_a_devpi_error(devpi: devpi_testserver.DevpiServer) -> None:
    make_user(devpi, "owner", "dev")
    with pytest.raises(DevpiError) as anonymous:
        DevpiClient(devpi.url).upload("owner/dev", "sneaky", "1.0")
    assert anonymous.value.status in (401, 403)
    with pytest.raises(DevpiError) as missing:
        DevpiClient(devpi.url).simple_page("owner/dev", "sneaky")
    assert missing.value.status == 404


def test_the_environment_s_proxies_are_not_used(
    devpi: devpi_testserver.DevpiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    for key in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(key, DEAD_PROXY)
    # urllib's own opener takes the proxy from the environment and fails...
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener().open(devpi.url + "/+api", timeout=5)
    # ...the client goes straight to the server.
    assert DevpiClient(devpi.url).call("GET", "/+api")["result"]["login"]


def test_a_script_is_the_client_and_its_body_with_only_the_standard_library(
    devpi: devpi_testserver.DevpiServer,
) -> None:
    make_user(devpi, "scripted", "dev")
    body = """
        import sys, time
        api, password = sys.argv[1:3]
        user = DevpiClient(api).login("scripted", password)
        user.upload("scripted/dev", "from-a-host", "1.0", "made on a host")
        print(sorted(user.call("GET", "/scripted/dev")["result"]["projects"]), time.time() > 0)
    """
    program = script(body)
    assert program == Path(devpi_testclient.__file__).read_text() + "\n" + textwrap.dedent(body)
    # -I: no PYTHONPATH, no user site, no script directory; a proxy that would fail.
    ran = subprocess.run(
        [sys.executable, "-I", "-c", program, devpi.url, "scripted-pw"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**without_proxies(), "http_proxy": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "['from-a-host'] True\n"


def test_a_script_holds_nothing_ansible_would_template() -> None:
    """The scenarios run a script on a host through testinfra's ansible backend (`ansible -m
    shell --args COMMAND`), and Ansible templates those arguments: the client's code must not
    hold Jinja's markers."""
    assert not re.search(r"\{\{|\{%|\{#", script(""))


def test_a_request_gives_up_after_its_timeout() -> None:
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = DevpiClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        for give_up in (
            lambda: client.request("GET", "/+api"),
            lambda: DevpiClient(client.url, timeout=None).simple_page("a/b", "c", timeout=0.3),
        ):
            started = time.monotonic()
            with pytest.raises(OSError):
                give_up()
            assert time.monotonic() - started < 5
