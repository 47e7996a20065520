#!/usr/bin/env python
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Build a devpi mirror with many cached files without asking PyPI for anything.

Small wheels are uploaded to a stage of one devpi-server (the "upstream", a local PyPI); a
mirror index on another devpi-server (or on the same one) gets that stage's simple index as its
``mirror_url``; then every project's simple page and every file is fetched through the mirror,
which makes the mirror cache them exactly as it caches PyPI's files.

Standard library only, so that it also runs as a script on a test host::

    python3 cachefill.py --upstream http://127.0.0.1:3142 --upstream-password PW \\
        --mirror http://127.0.0.1:3141 --mirror-password PW --projects 100 --versions 10

makes 1,000 cached files (100 projects x 10 versions) in the mirror index root/local-pypi.
The tests import it (tests/unit/plugins/modules/test_devpi_cache.py).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Loopback and test hosts: never through a proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_HREF = re.compile(r'href="([^"]+)"')


def wheel_bytes(project: str, version: str, payload: int = 0) -> bytes:
    """A small, valid, pure-Python wheel of project==version; ``payload`` bytes of random data
    in it make it about that much bigger (random, so it does not compress)."""
    dist = f"{project}-{version}.dist-info"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"{project}/__init__.py", "")
        if payload:
            wheel.writestr(f"{project}/data.bin", os.urandom(payload))
        wheel.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{dist}/RECORD", "")
    return buffer.getvalue()


class Devpi:
    """The few calls of devpi's HTTP API this needs, with the login token devpi-client sends."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.auth: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
        allow: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.auth:
            request.add_header("X-Devpi-Auth", self.auth)
        try:
            with OPENER.open(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            if e.code not in allow:
                message = f"{method} {self.url}{path}: HTTP {e.code} {e.read()[:200]!r}"
                raise RuntimeError(message) from None
            status, raw = e.code, e.read()
        return status, json.loads(raw) if raw.strip() else {}

    def login(self, user: str, password: str) -> None:
        self.auth = None
        _status, payload = self.call("POST", "/+login", {"user": user, "password": password})
        token = payload["result"]["password"]
        self.auth = base64.b64encode(f"{user}:{token}".encode()).decode()

    def upload(self, index: str, project: str, version: str, content: bytes) -> None:
        """Upload a wheel as devpi-client does: multipart, ':action' file_upload."""
        filename = f"{project}-{version}-py3-none-any.whl"
        fields = {
            ":action": "file_upload",
            "protocol_version": "1",
            "metadata_version": "2.1",
            "name": project,
            "version": version,
            "pyversion": "py3",
            "filetype": "bdist_wheel",
        }
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        self.call(
            "POST",
            f"/{index}/",
            data=b"".join(parts),
            content_type=f"multipart/form-data; boundary={boundary}",
        )


def names(projects: int, versions: int, prefix: str = "fillpkg") -> list[tuple[str, str]]:
    """(project, version) pairs: fillpkg0000 .. with versions 1.0, 1.1, ..."""
    return [(f"{prefix}{p:04d}", f"1.{v}") for p in range(projects) for v in range(versions)]


def seed_upstream(
    upstream: Devpi,
    root_password: str,
    releases: list[tuple[str, str]],
    *,
    index: str = "local/pypi",
    payload: int = 0,
    threads: int = 4,
) -> str:
    """Create the stage USER/INDEX (user password = root password) on the upstream and upload
    a wheel for each (project, version); returns the stage's simple index URL."""
    user = index.split("/")[0]
    upstream.login("root", root_password)
    if upstream.call("GET", f"/{user}", allow=(404,))[0] == 404:
        upstream.call("PUT", f"/{user}", {"password": root_password})
    upstream.login(user, root_password)
    if upstream.call("GET", f"/{index}?no_projects=", allow=(404,))[0] == 404:
        upstream.call("PUT", f"/{index}", {"type": "stage", "bases": []})

    def one(release: tuple[str, str]) -> None:
        upstream.upload(index, release[0], release[1], wheel_bytes(*release, payload=payload))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, releases))
    return f"{upstream.url}/{index}/+simple/"


def create_mirror(mirror: Devpi, root_password: str, index: str, mirror_url: str) -> None:
    """A mirror index (owned by root) of mirror_url, without the upstream's project list."""
    mirror.login("root", root_password)
    if mirror.call("GET", f"/{index}?no_projects=", allow=(404,))[0] == 404:
        config = {"type": "mirror", "mirror_url": mirror_url, "mirror_no_project_list": True}
        mirror.call("PUT", f"/{index}", config)


def fetch(url: str) -> int:
    """GET url and read it all; returns the number of bytes."""
    with OPENER.open(url, timeout=120) as response:
        return len(response.read())


def cache_through(mirror_url: str, projects: list[str], *, threads: int = 8) -> int:
    """Fetch each project's simple page from the mirror and then each file it links to, so
    the mirror caches them; returns the number of files fetched."""

    def files_of(project: str) -> list[str]:
        page = f"{mirror_url.rstrip('/')}/+simple/{project}/"
        with OPENER.open(page, timeout=120) as response:
            html = response.read().decode()
        return [urllib.parse.urljoin(page, href.split("#")[0]) for href in _HREF.findall(html)]

    with ThreadPoolExecutor(threads) as pool:
        links = [link for found in pool.map(files_of, projects) for link in found]
        links = [link for link in links if "/+f/" in link or "/+e/" in link]
        list(pool.map(fetch, links))
    return len(links)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--upstream", required=True, help="URL of the devpi that plays PyPI")
    parser.add_argument("--upstream-password", required=True, help="its root password")
    parser.add_argument("--mirror", required=True, help="URL of the devpi whose mirror to fill")
    parser.add_argument("--mirror-password", required=True, help="its root password")
    parser.add_argument("--mirror-index", default="root/local-pypi")
    parser.add_argument("--upstream-index", default="local/pypi")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--payload", type=int, default=0, help="random bytes in each wheel")
    args = parser.parse_args(argv)
    start = time.monotonic()
    releases = names(args.projects, args.versions)
    simple = seed_upstream(
        Devpi(args.upstream),
        args.upstream_password,
        releases,
        index=args.upstream_index,
        payload=args.payload,
    )
    uploaded = time.monotonic()
    create_mirror(Devpi(args.mirror), args.mirror_password, args.mirror_index, simple)
    projects = sorted({project for project, _version in releases})
    count = cache_through(f"{args.mirror.rstrip('/')}/{args.mirror_index}", projects)
    done = time.monotonic()
    print(
        json.dumps(
            {
                "uploaded": len(releases),
                "upload_seconds": round(uploaded - start, 1),
                "cached": count,
                "cache_seconds": round(done - uploaded, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
