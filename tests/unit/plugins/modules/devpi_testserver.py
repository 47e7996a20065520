# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""A real devpi-server for the module tests, and a way to run the modules as Ansible does.

The server comes from PyPI (devpi-server pinned below) in a venv cached under
``$XDG_CACHE_HOME/mcquack-devpi`` (``~/.cache`` by default; ansible-test passes only ``HOME``)
and built once per Python version with uv; each test session gets a fresh server-dir,
initialised with a known root password through ``DEVPISERVER_ROOT_PASSWD``, and a free port on
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.adhoc import COLLECTIONS_PATH

from devpi_testclient import DIRECT, DevpiClient

DEVPI_SERVER_VERSION = "6.20.3"
ROOT_PASSWORD = "root-password-of-the-test-server"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
START_TIMEOUT = 180


def devpi_server_venv() -> Path:
    """The cached venv with devpi-server, built on first use: one per Python version, from the
    base interpreter of the one running the tests (so it outlives ansible-test's venvs). A lock
    file keeps test runs side by side (ansible-test units on several ansible-core versions) from
    building the same venv at once."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcquack-devpi"
    tag = f"{DEVPI_SERVER_VERSION}-py{sys.version_info[0]}.{sys.version_info[1]}"
    venv = cache / f"test-devpi-server-{tag}"
    python = venv / "bin" / "python"
    complete = venv / ".complete"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"test-devpi-server-{tag}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete.exists() and python.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        try:
            _build_devpi_server_venv(venv)
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        complete.write_text(DEVPI_SERVER_VERSION)
    return venv


def _build_devpi_server_venv(venv: Path) -> None:
    pin = f"devpi-server=={DEVPI_SERVER_VERSION}"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    base = Path(sys.base_prefix) / "bin" / f"python{version}"
    interpreter = str(base) if base.exists() else sys.executable
    python = str(venv / "bin" / "python")
    # The project's pinned uv (next to the interpreter running the tests), else one on PATH.
    uv = str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        uv = shutil.which("uv") or uv
    if Path(uv).exists():
        # uv verifies TLS with its own Mozilla roots unless told otherwise. ansible-test removes
        # SSL_CERT_FILE (every variable but PATH and HOME) from the tests' environment: a
        # TLS-intercepting proxy's CA, installed in the system store, is then trusted only
        # through uv's system-certs setting (uv 0.11 and later; the toolchain pins a newer one).
        env = {**os.environ, "UV_SYSTEM_CERTS": "1"}
        subprocess.run(
            [uv, "venv", "--quiet", "--python", interpreter, str(venv)], check=True, env=env
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", python, pin], check=True, env=env
        )
    else:  # no uv at all: the standard library's venv and pip.
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", pin], check=True)


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
    # The devpi-server process and its server-dir (for the identity checks of devpi_host).
    pid: int = 0
    server_dir: Path = Path()

    @property
    def client(self) -> DevpiClient:
        """An anonymous client of this server (tools/devpi_testclient.py)."""
        return DevpiClient(self.url)

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
        """One request straight to the server (not through the modules), as ``auth`` (user,
        password) when given: (status, JSON)."""
        client = self.client if auth is None else self.client.login(*auth)
        return client.request(method, path, body, headers=headers, data=data)

    def token(self, user: str, password: str) -> str:
        return self.client.token(user, password)

    def root(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A request as root that must succeed."""
        status, payload = self.request(method, path, body, auth=("root", self.root_password))
        assert status < 300, (method, path, status, payload)
        return payload

    def result(self, path: str) -> dict[str, Any] | None:
        """The "result" of a GET of path; None when devpi answers 404."""
        status, payload = self.request("GET", path)
        if status == 404:
            return None
        assert status == 200, payload
        result: dict[str, Any] = payload["result"]
        return result

    def index(self, name: str) -> dict[str, Any] | None:
        return self.result(f"/{name}?no_projects=")

    def user(self, name: str) -> dict[str, Any] | None:
        return self.result(f"/{name}")

    def upload_wheel(
        self,
        index: str,
        auth: tuple[str, str],
        project: str = "tinypkg",
        version: str = "1.0",
        extra_bytes: int = 0,
    ) -> None:
        """Upload a small real wheel as ``auth`` (user, password) the way twine does;
        ``extra_bytes`` random bytes in it make it that much bigger."""
        files = None
        if extra_bytes:
            files = {f"{project}/__init__.py": b"", f"{project}/data.bin": os.urandom(extra_bytes)}
        self.client.login(*auth).upload(index, project, version, files=files)


def _stop_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this (child) process when the process that
    started it ends (prctl PR_SET_PDEATHSIG). ansible-test runs each test in a fork that ends
    with os._exit, so fixtures are never torn down there; without this, every test would leave
    its devpi-servers running."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def devpi_server(
    workdir: Path,
    *,
    init_args: tuple[str, ...] = (),
    server_args: tuple[str, ...] = (),
    root_password: str = ROOT_PASSWORD,
) -> Iterator[DevpiServer]:
    """A devpi-server on a free 127.0.0.1 port with a fresh server-dir under workdir (made with
    devpi-init and init_args), stopped when the block ends."""
    venv = devpi_server_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    server_dir = workdir / "server-dir"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPISERVER_")}
    env["DEVPISERVER_SERVERDIR"] = str(server_dir)
    if "REQUESTS_CA_BUNDLE" not in env and SYSTEM_CA_BUNDLE.exists():
        env["REQUESTS_CA_BUNDLE"] = str(SYSTEM_CA_BUNDLE)
    subprocess.run(
        [str(venv / "bin" / "devpi-init"), *init_args],
        env={**env, "DEVPISERVER_ROOT_PASSWD": root_password},
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "devpi-server.log"
    # At every start devpi-server derives its token-signing key from the secret with argon2id at
    # 512 MiB and 16 passes, seconds of CPU and most of its start time; these tests are about
    # what the modules do, not about that key, so the server derives it cheaply, as devpi's own
    # test suite does (its lower_argon2_parameters fixture), with devpi-server's own options.
    cheap_key = ["--argon2-memory-cost", "1024", "--argon2-time-cost", "1"]
    cheap_key += ["--argon2-parallelism", "1"]
    command = [str(venv / "bin" / "devpi-server"), "--host", "127.0.0.1", "--port", str(port)]
    with running(
        [*command, *cheap_key, *server_args], env, url, log, START_TIMEOUT, fresh_log=True
    ) as pid:
        yield DevpiServer(
            url=url, root_password=root_password, log=log, pid=pid, server_dir=server_dir
        )


@contextlib.contextmanager
def running(
    argv: list[str], env: dict[str, str], url: str, log: Path, timeout: float, fresh_log: bool
) -> Iterator[int]:
    """devpi-server run as argv (its output into log), its PID once it answers url/+api, for as
    long as the block runs; then stopped. It also stops when the process that started it ends
    (ansible-test runs each test in a fork that never tears fixtures down)."""
    with log.open("wb" if fresh_log else "ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # pylint: disable-next=subprocess-popen-preexec-fn
            preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
        )
    try:
        # Generous: on a busy machine (ansible-test units of several ansible-core versions side
        # by side) a start takes far longer than its usual second.
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"devpi-server exited with {process.returncode}:\n{log.read_text()}")
            try:
                with DIRECT.open(url + "/+api", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"devpi-server did not answer {url}/+api in {timeout} s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevpiServer]:
    """A devpi-server on a free 127.0.0.1 port with a fresh server-dir, for the whole session."""
    with devpi_server(tmp_path_factory.mktemp("devpi")) as server:
        yield server


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
    argv = [str(venv / "bin" / "devpi-server"), "-c", str(config)]
    with running(argv, env, url, log, timeout, fresh_log=False) as pid:
        yield DevpiServer(
            url=url, root_password=ROOT_PASSWORD, log=log, pid=pid, server_dir=server_dir
        )
