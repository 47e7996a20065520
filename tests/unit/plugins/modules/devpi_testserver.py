"""A real devpi-server for the module tests, and a way to run the modules as Ansible does.

The server comes from PyPI (devpi-server pinned below) in a venv cached under
``$XDG_CACHE_HOME/mcquack-devpi`` (``~/.cache`` by default) and built once with uv; each test
session gets a fresh server-dir, initialised with a known root password through
``DEVPISERVER_ROOT_PASSWD``, and a free port on 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.adhoc import COLLECTIONS_PATH

DEVPI_SERVER_VERSION = "6.20.3"
ROOT_PASSWORD = "root-password-of-the-test-server"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# Talk to loopback directly, whatever proxy the environment sets.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def devpi_server_venv() -> Path:
    """The cached venv with devpi-server, built on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "mcquack-devpi" / f"test-devpi-server-{DEVPI_SERVER_VERSION}"
    complete = venv / ".complete"
    if complete.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    pin = f"devpi-server=={DEVPI_SERVER_VERSION}"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    python = str(venv / "bin" / "python")
    try:
        if Path(uv).exists():
            subprocess.run(
                [uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True
            )
            subprocess.run([uv, "pip", "install", "--quiet", "--python", python, pin], check=True)
        else:  # ansible-test's venv has no uv: the standard library's venv and pip.
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([python, "-m", "pip", "install", "--quiet", pin], check=True)
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    complete.write_text(DEVPI_SERVER_VERSION)
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DevpiServer:
    url: str
    root_password: str
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One request straight to the server (not through the modules): (status, JSON)."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if auth is not None:
            token = self.token(*auth)
            all_headers["X-Devpi-Auth"] = base64.b64encode(f"{auth[0]}:{token}".encode()).decode()
        req = urllib.request.Request(self.url + path, data=data, headers=all_headers, method=method)
        try:
            with _DIRECT.open(req, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            payload = {"text": raw.decode(errors="replace")}
        return status, payload

    def token(self, user: str, password: str) -> str:
        status, payload = self.request("POST", "/+login", {"user": user, "password": password})
        assert status == 200, payload
        token: str = payload["result"]["password"]
        return token

    def root(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A request as root that must succeed."""
        status, payload = self.request(method, path, body, auth=("root", self.root_password))
        assert status < 300, (method, path, status, payload)
        return payload

    def index(self, name: str) -> dict[str, Any] | None:
        status, payload = self.request("GET", f"/{name}?no_projects=")
        if status == 404:
            return None
        assert status == 200, payload
        result: dict[str, Any] = payload["result"]
        return result

    def user(self, name: str) -> dict[str, Any] | None:
        status, payload = self.request("GET", f"/{name}")
        if status == 404:
            return None
        assert status == 200, payload
        result: dict[str, Any] = payload["result"]
        return result

    def upload_wheel(
        self, index: str, auth: tuple[str, str], project: str = "tinypkg", version: str = "1.0"
    ) -> None:
        """Upload a small real wheel as ``auth`` (user, password) the way devpi-client's upload
        does: a multipart POST of the metadata fields and the file as 'content', with ':action'
        file_upload and the login token in X-Devpi-Auth."""
        dist = f"{project}-{version}.dist-info"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as wheel:
            wheel.writestr(f"{project}/__init__.py", "")
            wheel.writestr(
                f"{dist}/METADATA",
                f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
            )
            wheel.writestr(
                f"{dist}/WHEEL",
                "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
            wheel.writestr(f"{dist}/RECORD", "")
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
        disposition = '--{}\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
        parts = [disposition.format(boundary, key, value).encode() for key, value in fields.items()]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + buffer.getvalue()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, payload = self.request(
            "POST",
            f"/{index}/",
            auth=auth,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            data=b"".join(parts),
        )
        assert status == 200, (status, payload)


@pytest.fixture(scope="session")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevpiServer]:
    """A devpi-server on a free 127.0.0.1 port with a fresh server-dir, for the whole session."""
    venv = devpi_server_venv()
    workdir = tmp_path_factory.mktemp("devpi")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPISERVER_")}
    env["DEVPISERVER_SERVERDIR"] = str(workdir / "server-dir")
    if "REQUESTS_CA_BUNDLE" not in env and SYSTEM_CA_BUNDLE.exists():
        env["REQUESTS_CA_BUNDLE"] = str(SYSTEM_CA_BUNDLE)
    subprocess.run(
        [str(venv / "bin" / "devpi-init")],
        env={**env, "DEVPISERVER_ROOT_PASSWD": ROOT_PASSWORD},
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "devpi-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "devpi-server"), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"devpi-server exited with {process.returncode}:\n{log.read_text()}")
            try:
                with _DIRECT.open(url + "/+api", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"devpi-server did not answer {url}/+api in 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield DevpiServer(url=url, root_password=ROOT_PASSWORD, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ModuleRun:
    result: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def warnings(self) -> list[Any]:
        """What Ansible would print as [WARNING] and [DEPRECATION WARNING] lines."""
        return [*self.result.get("warnings", []), *self.result.get("deprecations", [])]

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))


RunModule = Callable[..., ModuleRun]


@pytest.fixture(scope="session")
def run_module(tmp_path_factory: pytest.TempPathFactory) -> RunModule:
    """Run a module of this collection the way Ansible runs it on a host: its Python file with
    the arguments in a JSON file (``ANSIBLE_MODULE_ARGS``, check and diff mode as Ansible's
    ``_ansible_check_mode`` / ``_ansible_diff``), and return the JSON it prints.

    No ``ansible`` command: ansible-test runs module unit tests where only the module side of
    ansible-core (``ansible.module_utils``) can be imported."""
    args_dir = tmp_path_factory.mktemp("module-args")

    def run(
        module: str, args: dict[str, Any], *, check: bool = False, diff: bool = False
    ) -> ModuleRun:
        args_file = args_dir / f"{module}-{uuid.uuid4().hex}.json"
        internal = {"_ansible_check_mode": check, "_ansible_diff": diff}
        args_file.touch(mode=0o600)
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, **internal}}))
        name = f"ansible_collections.mcquack.devpi.plugins.modules.{module}"
        cmd = [sys.executable, "-m", name, str(args_file)]
        pythonpath = os.pathsep.join(filter(None, [COLLECTIONS_PATH, os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        try:
            done = subprocess.run(
                cmd, cwd=args_dir, env=env, capture_output=True, text=True, timeout=120, check=False
            )
        finally:
            args_file.unlink()
        try:
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            pytest.fail(f"no result from {cmd}:\n{done.stdout}\n{done.stderr}")
        if not isinstance(result, dict):
            pytest.fail(f"{cmd} printed {result!r}, not a result")
        return ModuleRun(result=result, stdout=done.stdout, stderr=done.stderr)

    return run


@contextlib.contextmanager
def devpi_server_with_config(config: Path, *, timeout: float = 120) -> Iterator[DevpiServer]:
    """A devpi-server started as the role starts it, ``devpi-server -c CONFIG``, for as long as
    the ``with`` block runs; then stopped. The config file (a devpi-server.yml as the role
    renders it) names the server-dir, the secret file, host and port. The secret is generated
    when missing, and the server-dir initialised with root's password ``ROOT_PASSWORD`` when it
    is not yet, so the same config and server-dir can be started again, e.g. with other options."""
    settings: dict[str, Any] = yaml.safe_load(config.read_text())["devpi-server"]
    venv = devpi_server_venv()
    server_dir = Path(settings["serverdir"])
    secret = Path(settings["secretfile"])
    # Only the config speaks: no DEVPISERVER_* from the environment (they would win over it).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPISERVER_")}
    if "REQUESTS_CA_BUNDLE" not in env and SYSTEM_CA_BUNDLE.exists():
        env["REQUESTS_CA_BUNDLE"] = str(SYSTEM_CA_BUNDLE)
    if not secret.exists():
        subprocess.run(
            [str(venv / "bin" / "devpi-gen-secret"), "--secretfile", str(secret)],
            env=env,
            check=True,
            capture_output=True,
        )
    if not (server_dir / ".serverversion").exists():
        subprocess.run(
            [str(venv / "bin" / "devpi-init"), "--serverdir", str(server_dir)],
            env={**env, "DEVPISERVER_ROOT_PASSWD": ROOT_PASSWORD},
            check=True,
            capture_output=True,
        )
    host = str(settings.get("host", "localhost"))
    url = f"http://{host}:{settings['port']}"
    log = config.with_name(config.name + ".log")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "devpi-server"), "-c", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"devpi-server exited with {process.returncode}:\n{log.read_text()}")
            try:
                with _DIRECT.open(url + "/+api", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"devpi-server did not answer {url}/+api in {timeout} s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield DevpiServer(url=url, root_password=ROOT_PASSWORD, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
