# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A small client of devpi-server's HTTP API for the project's tests and bench.

What devpi-client, twine and pip do, cut down to what the tests need: JSON requests, a login
(the token in devpi's X-Devpi-Auth header), a small wheel built in memory and uploaded as twine
uploads it, the simple pages pip reads, and a pip download through an index. It goes straight
to the server and never through a proxy from the environment: every server it talks to is on
loopback or a private test network.

Standard library only, so that the same code runs on a test host: ``script(body)`` is this
module's source followed by ``body``, to run there with ``python3 -c``.

    root = DevpiClient("http://127.0.0.1:3141").login("root", password)
    root.call("PUT", "/alice", {"password": "alice-pw"})
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import textwrap
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Opens URLs without the proxies of the environment (http_proxy and the like).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DevpiError(OSError):
    """devpi answered, but not with success; like urllib's HTTPError, an OSError."""

    def __init__(self, method: str, url: str, status: int, payload: dict[str, Any]) -> None:
        super().__init__(f"{method} {url}: HTTP {status} {payload.get('message', payload)}")
        self.status = status
        self.payload = payload


def wheel(
    name: str, version: str, summary: str = "", files: Mapping[str, bytes] | None = None
) -> tuple[str, bytes]:
    """A pure-Python wheel of project `name` at `version`: its file name and its bytes.

    `files` is what it installs (default: package `name` whose VERSION is `version`); the
    .dist-info (METADATA, WHEEL and a RECORD with every file's hash) is added."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}.dist-info"
    content = dict(files or {f"{module}/__init__.py": f"VERSION = {version!r}\n".encode()})
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    content[f"{dist}/METADATA"] = (metadata + (f"Summary: {summary}\n" if summary else "")).encode()
    content[f"{dist}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mcquack.devpi tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in content.items()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in content.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}/RECORD", record + f"{dist}/RECORD,,\n")
    return f"{module}-{version}-py3-none-any.whl", buffer.getvalue()


def form_data(fields: Mapping[str, str], filename: str, content: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body of `fields` and the file as `content`: (Content-Type, body)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


class DevpiClient:
    """devpi-server at `url` (scheme, host and port, e.g. http://127.0.0.1:3141), anonymous or,
    from login(), as a user. `timeout`: seconds a request may take (None: no limit); a call's
    own `timeout` overrides it."""

    def __init__(self, url: str, *, auth: str | None = None, timeout: float | None = 30.0) -> None:
        self.url = url.rstrip("/")
        self.auth = auth  # the X-Devpi-Auth header value: base64 of "user:token"
        self.timeout = timeout

    def open(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """One request: the status and the body of the answer, whatever the status."""
        all_headers = dict(headers or {})
        if self.auth is not None:
            all_headers["X-Devpi-Auth"] = self.auth
        request = urllib.request.Request(
            self.url + path, data=data, headers=all_headers, method=method
        )
        try:
            with DIRECT.open(
                request, timeout=self.timeout if timeout is None else timeout
            ) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """A JSON request (`body` sent as JSON, else `data` as it is): the status and the answer
        parsed ({} when empty, {"text": ...} when it is not JSON)."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        status, raw = self.open(method, path, data, all_headers, timeout)
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            payload = {"text": raw.decode(errors="replace")}
        return status, payload if isinstance(payload, dict) else {"result": payload}

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A JSON request that must succeed (2xx, else DevpiError): the parsed answer."""
        status, payload = self.request(method, path, body)
        if not 200 <= status < 300:
            raise DevpiError(method, self.url + path, status, payload)
        return payload

    def token(self, user: str, password: str) -> str:
        """A login token of `user` (POST /+login)."""
        result = self.call("POST", "/+login", {"user": user, "password": password})["result"]
        return str(result["password"])

    def login(self, user: str, password: str) -> DevpiClient:
        """A client of the same server that sends `user`'s token, as devpi-client does."""
        token = self.token(user, password)
        auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        return DevpiClient(self.url, auth=auth, timeout=self.timeout)

    def upload(
        self,
        index: str,
        name: str,
        version: str,
        summary: str = "",
        files: Mapping[str, bytes] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Upload wheel(name, version, summary, files) to `index` (user/index) as twine does:
        a multipart POST of the metadata and the file, ':action' file_upload."""
        filename, content = wheel(name, version, summary, files)
        fields = {
            ":action": "file_upload",
            "protocol_version": "1",
            "metadata_version": "2.1",
            "name": name,
            "version": version,
            "pyversion": "py3",
            "filetype": "bdist_wheel",
            **({"summary": summary} if summary else {}),
        }
        content_type, body = form_data(fields, filename, content)
        path = f"/{index}/"
        status, answer = self.request(
            "POST", path, data=body, headers={"Content-Type": content_type}, timeout=timeout
        )
        if status != 200:
            raise DevpiError("POST", self.url + path, status, answer)

    def simple_page(self, index: str, project: str, timeout: float | None = None) -> str:
        """The simple page (HTML) of `project` in `index`, as pip reads it."""
        path = f"/{index}/+simple/{project}/"
        status, raw = self.open("GET", path, timeout=timeout)
        text = raw.decode(errors="replace")
        if status != 200:
            raise DevpiError("GET", self.url + path, status, {"text": text})
        return text


def pip_download(pip: str, index_url: str, requirement: str, dest: str) -> bool:
    """`pip download` of `requirement` alone (no dependencies, no cache, quiet) from the simple
    index at `index_url` into `dest`, with the pip at path `pip`: whether it succeeded."""
    argv = [pip, "download", "--quiet", "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", "--dest", dest, "--index-url", index_url, requirement]  # fmt: skip
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def script(body: str) -> str:
    """A Python program for ``python3 -c``: this module, then `body` (dedented), which uses it."""
    return Path(__file__).read_text(encoding="utf-8") + "\n" + textwrap.dedent(body)
