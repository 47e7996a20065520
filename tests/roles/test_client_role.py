# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""The client role (roles/client), applied by ansible-playbook on this controller as root against
localhost, for a throwaway local user with a home of its own under the system's temporary
directory: pip's and uv's files with their exact content and owner, read back by pip and uv;
idempotence; check mode; a foreign file set aside and restored byte for byte; absent leaving
foreign files alone; bad input refused by name before any change; scope global in check mode
(nothing is written to /etc); macOS's paths; and devpi use with a real devpi-client against a
real devpi-server.

Not a unit test: it runs a role against real accounts of this machine (as root, through su),
so it lives outside tests/unit, where `ansible-test units` collects; `pytest tests` runs it."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.mcquack.devpi.tests.unit.playbook import run_playbook
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules import devpi_testserver
from ansible_collections.mcquack.devpi.tests.unit.plugins.modules.devpi_testserver import (
    DevpiServer,
)

# The session's devpi-server (a pytest fixture), for the devpi use test.
devpi = devpi_testserver.devpi

SYSTEM_PYTHON = Path("/usr/bin/python3")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="creates a throwaway local user (useradd, needs root) who runs /usr/bin/python3",
)

HTTPS_URL = "https://pypi.ops.eblu.me/root/pypi/+simple/"
HTTP_URL = "http://10.213.50.2:3141/root/pypi/+simple/"
HEADER = (
    "# Managed by mcquack.devpi.client\n"
    "# Ansible writes this whole file: set devpi_client_* instead of editing;"
    " devpi_client_state=absent removes it.\n"
)
ROLE = Path(__file__).resolve().parents[2] / "roles" / "client"
DEVPI_CLIENT_VERSION = "7.2.0"


def pip_conf(url: str, trusted_host: str | None = None) -> str:
    trusted = f"trusted-host = {trusted_host}\n" if trusted_host else ""
    return f"{HEADER}[global]\nindex-url = {url}\n{trusted}"


def uv_toml(url: str, insecure_host: str | None = None, tls: str = "system-certs") -> str:
    insecure = f'allow-insecure-host = ["{insecure_host}"]\n' if insecure_host else ""
    return f'{HEADER}{tls} = true\n{insecure}\n[[index]]\nurl = "{url}"\ndefault = true\n'


@dataclass
class Account:
    name: str
    home: Path
    uid: int
    gid: int

    @property
    def pip_conf(self) -> Path:
        return self.home / ".config/pip/pip.conf"

    @property
    def uv_toml(self) -> Path:
        return self.home / ".config/uv/uv.toml"

    def hand_over(self) -> None:
        """Make everything in the home the user's, as if they had made it (after a test has)."""
        for path in [self.home, *self.home.rglob("*")]:
            os.lchown(path, self.uid, self.gid)

    def write(self, files: dict[Path, str | bytes]) -> None:
        """Files of the user's own (not the role's), with their directories, then hand over."""
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.hand_over()


@pytest.fixture
def account() -> Iterator[Account]:
    """A local user that exists for one test, its home in a directory of its own under the
    system's temporary directory (0711, removed afterwards). Not under pytest's tmp_path: pytest
    keeps its temporary root 0700 and takes group and other bits off it whenever a pytest starts
    (the molecule verifiers next to this run are pytests), so the user could lose the way home
    in the middle of a test."""
    name = "mcq" + uuid.uuid4().hex[:12]
    top = Path(tempfile.mkdtemp(prefix="mcquack-devpi-client-"))
    top.chmod(0o711)
    home = top / "home"
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name],
        check=True,
        capture_output=True,
    )
    try:
        entry = pwd.getpwnam(name)
        yield Account(name=name, home=home, uid=entry.pw_uid, gid=entry.pw_gid)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


@dataclass
class Run:
    process: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.process.stdout + self.process.stderr

    @property
    def failed(self) -> bool:
        return self.process.returncode != 0

    @property
    def changed(self) -> int:
        """The play recap's changed= count (tasks that changed something, or would)."""
        match = re.search(r"^localhost\s+:\s+ok=\d+\s+changed=(\d+)", self.process.stdout, re.M)
        assert match, self.output
        return int(match.group(1))


def apply(
    account: Account, *options: str, playbook: str = "client_role.yml", **role_vars: Any
) -> Run:
    """The role for the account; role_vars are extra vars, options ansible-playbook options.
    The role handles the account's files as the account: root becomes it with su, and the
    account runs the modules with a Python it can reach (this runner's may be under /root)."""
    extra = {
        "devpi_client_user": account.name,
        "ansible_become_method": "su",
        "ansible_python_interpreter": str(SYSTEM_PYTHON),
        **role_vars,
    }
    return Run(run_playbook(playbook, extra, *options))


def converge(account: Account, *options: str, **role_vars: Any) -> Run:
    """apply() that must succeed."""
    run = apply(account, *options, **role_vars)
    assert not run.failed, run.output
    return run


Snapshot = dict[str, tuple[int, int, int, bytes | None]]


def snapshot(*roots: Path) -> Snapshot:
    """Every path under roots: mode, owner, group and content (files), to compare runs with."""
    seen: Snapshot = {}
    for root in roots:
        paths = [root, *root.rglob("*")] if root.exists() else []
        for path in paths:
            info = path.lstat()
            content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            seen[str(path)] = (info.st_mode, info.st_uid, info.st_gid, content)
    return seen


def assert_owned_file(path: Path, account: Account, content: str) -> None:
    assert path.read_text() == content
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (account.uid, account.gid)
    assert stat.S_IMODE(info.st_mode) == 0o644


def clean_env(account: Account) -> dict[str, str]:
    """The account's environment as pip and uv would see it, without this runner's PIP_*/UV_*."""
    return {"HOME": str(account.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def pip_reads(account: Account) -> str | None:
    """global.index-url as pip reads it from the account's user configuration file."""
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "pip", "config", "--user", "get", "global.index-url"],
        env=clean_env(account),
        cwd=account.home,
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named pip" in result.stderr:
        return None
    return result.stdout.strip() if result.returncode == 0 else f"pip failed: {result.stderr}"


def uv_reads(account: Account) -> str | None:
    """uv's resolved settings (its hidden --show-settings) with the account's user configuration."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        return None
    result = subprocess.run(
        [uv, "pip", "compile", "--show-settings", "-"],
        env=clean_env(account),
        cwd=account.home,
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    return result.stdout


def test_every_default_has_a_described_spec_and_back() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(options) - set(defaults) == {"devpi_client_index_url"}
    assert options["devpi_client_index_url"]["required"] is True
    assert set(defaults) <= set(options)
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("type"), f"{name} has no type"
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{name}: spec and defaults/main.yml differ"


@needs_root
def test_present_writes_both_files_for_an_https_index_and_a_second_run_changes_nothing(
    account: Account,
) -> None:
    first = converge(account, devpi_client_index_url=HTTPS_URL)
    assert first.changed > 0

    assert_owned_file(account.pip_conf, account, pip_conf(HTTPS_URL))
    assert_owned_file(account.uv_toml, account, uv_toml(HTTPS_URL))
    for directory in (account.home / ".config", account.pip_conf.parent, account.uv_toml.parent):
        info = directory.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
            account.uid,
            account.gid,
            0o700,
        )
    # What pip and uv make of them.
    assert pip_reads(account) in (HTTPS_URL, None)
    settings = uv_reads(account)
    if settings is not None:
        assert "system_certs: true" in settings
        assert '"pypi.ops.eblu.me"' in settings
        assert "allow_insecure_host: []" in settings

    before = snapshot(account.home)
    second = converge(account, devpi_client_index_url=HTTPS_URL)
    assert second.changed == 0, second.output
    assert snapshot(account.home) == before


@needs_root
def test_a_plain_http_index_makes_its_host_trusted(account: Account) -> None:
    converge(account, devpi_client_index_url=HTTP_URL)

    assert_owned_file(account.pip_conf, account, pip_conf(HTTP_URL, "10.213.50.2"))
    assert_owned_file(account.uv_toml, account, uv_toml(HTTP_URL, "10.213.50.2"))
    settings = uv_reads(account)
    if settings is not None:
        assert re.search(r'allow_insecure_host: \[\s*Host \{[^}]*"10\.213\.50\.2"', settings)


@needs_root
def test_only_the_tools_asked_for_and_native_tls_for_older_uv(account: Account) -> None:
    converge(
        account,
        devpi_client_index_url=HTTPS_URL,
        devpi_client_pip=False,
        devpi_client_uv_tls_setting="native-tls",
    )

    assert_owned_file(account.uv_toml, account, uv_toml(HTTPS_URL, tls="native-tls"))
    assert not account.pip_conf.parent.exists()


@needs_root
def test_check_mode_reports_the_changes_and_writes_nothing(account: Account) -> None:
    before = snapshot(account.home)

    run = converge(account, "--check", "--diff", devpi_client_index_url=HTTPS_URL)

    assert run.changed > 0
    assert f"+index-url = {HTTPS_URL}" in run.output
    assert f'+url = "{HTTPS_URL}"' in run.output
    assert snapshot(account.home) == before


@needs_root
def test_a_foreign_pip_conf_is_set_aside_and_absent_restores_it_byte_for_byte(
    account: Account,
) -> None:
    original = b"[global]\nindex-url = https://example.org/simple\ntimeout = 60\n\xc3\xa9\n"
    account.write({account.pip_conf: original})
    account.pip_conf.chmod(0o600)
    os.utime(account.pip_conf, (1_000_000_000, 1_000_000_000))
    was = account.pip_conf.stat()
    aside = account.pip_conf.with_name("pip.conf.before-mcquack-devpi")

    converge(account, devpi_client_index_url=HTTPS_URL)

    assert_owned_file(account.pip_conf, account, pip_conf(HTTPS_URL))
    assert aside.read_bytes() == original

    absent = converge(account, devpi_client_index_url=HTTPS_URL, devpi_client_state="absent")

    assert absent.changed > 0
    assert account.pip_conf.read_bytes() == original
    now = account.pip_conf.stat()
    assert (now.st_ino, now.st_mode, now.st_uid, now.st_gid, now.st_mtime) == (
        was.st_ino,
        was.st_mode,
        was.st_uid,
        was.st_gid,
        was.st_mtime,
    )
    assert not aside.exists()
    assert not account.uv_toml.exists()

    before = snapshot(account.home)
    again = converge(account, devpi_client_index_url=HTTPS_URL, devpi_client_state="absent")
    assert again.changed == 0, again.output
    assert snapshot(account.home) == before


@needs_root
def test_present_refuses_to_set_aside_over_an_earlier_copy(account: Account) -> None:
    """A foreign file where the role's was, and the copy it set aside before: moving the new one
    aside would lose the old one, so nothing changes and the run says why."""
    aside = account.pip_conf.with_name("pip.conf.before-mcquack-devpi")
    account.write({
        aside: "[global]\nindex-url = https://first.example.org/simple\n",
        account.pip_conf: "[global]\nindex-url = https://second.example.org/simple\n",
    })  # fmt: skip
    before = snapshot(account.home)

    run = apply(account, devpi_client_index_url=HTTPS_URL)

    assert run.failed
    assert f"{aside} already holds what the role set aside before" in " ".join(run.output.split())
    assert snapshot(account.home) == before


@needs_root
def test_absent_where_the_role_never_ran_changes_nothing_and_leaves_a_foreign_file(
    account: Account,
) -> None:
    # A set-aside copy next to a foreign file: absent cannot tell whose it is, so both stay.
    account.write({
        account.pip_conf: "[global]\nindex-url = https://example.org/simple\n",
        account.uv_toml: 'index-url = "https://example.org/simple"\n',
        account.uv_toml.with_name("uv.toml.before-mcquack-devpi"): "# older\n",
    })  # fmt: skip
    before = snapshot(account.home)

    run = converge(account, devpi_client_index_url=HTTPS_URL, devpi_client_state="absent")

    assert run.changed == 0, run.output
    assert snapshot(account.home) == before


@needs_root
def test_every_bad_input_is_named_in_one_run_before_any_change(account: Account) -> None:
    before = snapshot(account.home)

    run = apply(
        account,
        devpi_client_index_url="ftp://x",
        devpi_client_devpi_use=True,
        devpi_client_devpi_clientdir="devpi/client",
    )

    assert run.failed
    output = " ".join(run.output.split())
    assert "devpi_client_index_url must be an http:// or https:// URL such as" in output
    assert "got 'ftp://x'" in output
    assert "devpi_client_devpi_use needs devpi_client_index_url to be a devpi index's" in output
    assert "devpi_client_devpi_clientdir must be empty or an absolute path" in output
    assert snapshot(account.home) == before


@needs_root
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "devpi_client_index_url must be an http:// or https:// URL"),
        ("pypi.example.org/simple", "devpi_client_index_url must be an http:// or https:// URL"),
        (
            "https://eblume:secret@pypi.example.org/simple/",
            "devpi_client_index_url must not hold a user name or password",
        ),
    ],
)
def test_a_bad_index_url_is_refused_by_name_before_any_change(
    account: Account, url: str, message: str
) -> None:
    before = snapshot(account.home)

    run = apply(account, devpi_client_index_url=url)

    assert run.failed
    assert message in " ".join(run.output.split())
    assert snapshot(account.home) == before


@needs_root
def test_a_missing_index_url_is_refused_by_name(account: Account) -> None:
    before = snapshot(account.home)

    run = apply(account)

    assert run.failed
    assert "missing required arguments: devpi_client_index_url" in run.output
    assert snapshot(account.home) == before


def test_an_unknown_user_is_refused_by_name() -> None:
    run = run_playbook(
        "client_role.yml",
        {"devpi_client_index_url": HTTPS_URL, "devpi_client_user": "no-such-user-mcq"},
    )

    assert run.returncode != 0
    assert "devpi_client_user must be an account on this host, got 'no-such-user-mcq'" in " ".join(
        run.stdout.split()
    )


def test_scope_global_in_check_mode_plans_the_system_files_and_writes_nothing() -> None:
    """Scope global writes /etc/pip.conf and /etc/uv/uv.toml; this controller's /etc is not the
    role's to change, so the role runs in check mode, which must show both and touch nothing."""
    watched = [Path("/etc/pip.conf"), Path("/etc/uv")]
    before = snapshot(*watched)

    run = Run(
        run_playbook(
            "client_role.yml",
            {"devpi_client_index_url": HTTPS_URL, "devpi_client_scope": "global"},
            "--check",
            "--diff",
        )
    )

    assert not run.failed, run.output
    assert run.changed > 0
    assert "(item=/etc/pip.conf)" in run.output
    assert "(item=/etc/uv/uv.toml)" in run.output
    assert f"+index-url = {HTTPS_URL}" in run.output
    assert snapshot(*watched) == before


@needs_root
def test_macos_paths_pip_writes_where_pip_reads(account: Account) -> None:
    """On macOS pip reads ~/Library/Application Support/pip/pip.conf when that directory exists
    and ~/.config/pip/pip.conf otherwise: the role writes the one pip reads, and does not create
    the Application Support directory (which would hide ~/.config/pip/pip.conf from pip)."""
    application_support = account.home / "Library/Application Support"
    application_support.mkdir(parents=True)
    account.hand_over()
    mac = {"playbook": "client_role_darwin.yml", "devpi_client_index_url": HTTPS_URL}

    converge(account, **mac)

    assert_owned_file(account.pip_conf, account, pip_conf(HTTPS_URL))
    assert_owned_file(account.uv_toml, account, uv_toml(HTTPS_URL))
    assert not (application_support / "pip").exists()

    (application_support / "pip").mkdir()
    account.hand_over()
    converge(account, **mac)

    assert_owned_file(application_support / "pip/pip.conf", account, pip_conf(HTTPS_URL))

    converge(account, **mac, devpi_client_state="absent")

    assert not (application_support / "pip/pip.conf").exists()
    assert not account.pip_conf.exists()
    assert not account.uv_toml.exists()
    assert (application_support / "pip").is_dir()


def devpi_client_venv(directory: Path) -> Path:
    """devpi-client from PyPI in a venv the account can run (the system Python's; this runner's
    own Python may live where the account cannot go)."""
    pin = f"devpi-client=={DEVPI_CLIENT_VERSION}"
    python = directory / "bin" / "python"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if Path(uv).exists():
        subprocess.run(
            [uv, "venv", "--quiet", "--python", str(SYSTEM_PYTHON), str(directory)], check=True
        )
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), pin], check=True)
    else:
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(directory)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", pin], check=True)
    return directory / "bin" / "devpi"


@needs_root
def test_devpi_use_sets_the_current_index_once_and_absent_forgets_it(
    account: Account, devpi: DevpiServer
) -> None:
    command = devpi_client_venv(account.home / "devpi-client")
    url = f"{devpi.url}/root/pypi/+simple/"
    role_vars = {
        "devpi_client_index_url": url,
        "devpi_client_devpi_use": True,
        "devpi_client_devpi_command": str(command),
    }
    current = account.home / ".devpi/client/current.json"

    converge(account, **role_vars)

    assert json.loads(current.read_text())["index"] == f"{devpi.url}/root/pypi"
    assert (current.stat().st_uid, current.stat().st_gid) == (account.uid, account.gid)
    assert_owned_file(account.pip_conf, account, pip_conf(url, "127.0.0.1"))

    again = converge(account, **role_vars)
    assert again.changed == 0, again.output

    absent = converge(account, **role_vars, devpi_client_state="absent")

    assert absent.changed > 0
    assert not current.exists()
    assert not account.pip_conf.exists()
    assert converge(account, **role_vars, devpi_client_state="absent").changed == 0
