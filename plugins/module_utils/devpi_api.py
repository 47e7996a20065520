# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""devpi-server's HTTP API for the mcquack.devpi modules: requests, login, errors, validation.

HTTP goes through Ansible's own ansible.module_utils.urls (its Request, which open_url wraps),
which ships with every module to the managed host and brings certificate checks
(validate_certs, ca_path) and proxy handling. The code runs on Python 3.9 (the system python3 of macOS), so annotations stay
strings and no newer syntax is used at run time.

Authentication works the way devpi-client does it: ``POST /+login`` with
``{"user": ..., "password": ...}`` returns a signed token in ``result.password``; every further
request carries ``X-Devpi-Auth: base64("<user>:<token>")`` (devpi-client ``devpi/main.py``
``set_devpi_auth_header``, devpi-server ``devpi_server/auth_devpi.py``). That header, unlike
``Authorization``, stays free for a reverse proxy's own basic auth.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit

from ansible.module_utils.urls import (  # type: ignore[import-untyped,unused-ignore]
    ConnectionError as UrlsConnectionError,
)
from ansible.module_utils.urls import (  # type: ignore[import-untyped,unused-ignore]
    Request,
    SSLValidationError,
    make_context,
)
from ansible_collections.mcquack.devpi.plugins.module_utils.devpi_host import identity_problem

# devpi-server's model.py name_char_blocklist_regexp: control characters, space and every ASCII
# symbol except "-", ".", "@" and "_" are refused in user and index names.
_NAME_BLOCKLIST = re.compile(r"[\x00-\x20!\"#$%&'()*+,/:;<=>?\[\\\]^`{|}~]")
_PROJECT_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
# release files and documentation: what devpi stores when someone uploads to a stage
_UPLOAD_RELS = ("releasefile", "doczip")


class DevpiError(Exception):
    """A failure with a message meant for the operator (it becomes fail_json's msg)."""


def common_argument_spec() -> dict[str, Any]:
    """The options every devpi module shares: where the server is and how to log in."""
    return {
        "url": {"type": "str", "default": "http://127.0.0.1:3141"},
        "login_user": {"type": "str", "default": "root"},
        "login_password": {"type": "str", "no_log": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "timeout": {"type": "int", "default": 30},
        "service": {"type": "str"},
        "nodeinfo": {"type": "path"},
    }


_ALLOWED = "letters, digits and the symbols '-', '.', '@' and '_'"


def validate_name(name: str, what: str) -> str:
    """Refuse a user or index name devpi-server would refuse, before anything is changed."""
    if not name or _NAME_BLOCKLIST.search(name):
        raise DevpiError(f"invalid {what} {name!r}: devpi allows only {_ALLOWED}")
    return name


def split_index_name(name: str, what: str = "index name") -> tuple[str, str]:
    """'user/index' as (user, index), both validated."""
    parts = name.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise DevpiError(f"invalid {what} {name!r}: expected USER/INDEX, for example 'root/pypi'")
    for part in parts:
        if _NAME_BLOCKLIST.search(part):
            raise DevpiError(
                f"invalid {what} {name!r}: {part!r} has characters devpi does not allow "
                f"(only {_ALLOWED})"
            )
    return parts[0], parts[1]


def normalize_project_name(name: str) -> str:
    """PEP 503 normalisation, as devpi applies it to mirror_whitelist ('*' stays '*')."""
    if name == "*":
        return name
    return _PROJECT_SEPARATORS.sub("-", name).lower()


def normalize_acl(names: list[str]) -> list[str]:
    """devpi stores the special principals in upper case (':ANONYMOUS:', ':AUTHENTICATED:')."""
    return [n.upper() if n.upper() in (":ANONYMOUS:", ":AUTHENTICATED:") else n for n in names]


# The index options the modules manage, with their types as devpi-server 6.x stores them
# (model.py and mirror.py: normalize_indexconfig_value). "both" options apply to every index.
INDEX_OPTION_TYPES: dict[str, str] = {
    "type": "str",
    "title": "str",
    "description": "str",
    "volatile": "bool",
    "bases": "list",
    "acl_upload": "list",
    "mirror_whitelist": "list",
    "mirror_url": "str",
    "mirror_web_url_fmt": "str",
    "mirror_cache_expiry": "int",
    "mirror_no_project_list": "bool",
    "mirror_use_external_urls": "bool",
    "mirror_ignore_serial_header": "bool",
}
STAGE_ONLY_OPTIONS = ("bases", "acl_upload", "mirror_whitelist")
MIRROR_ONLY_OPTIONS = (
    "mirror_url",
    "mirror_web_url_fmt",
    "mirror_cache_expiry",
    "mirror_no_project_list",
    "mirror_use_external_urls",
    "mirror_ignore_serial_header",
)
# What devpi-server assumes for a boolean mirror option the index config does not hold.
_OPTION_ABSENT_MEANS: dict[str, Any] = {
    "mirror_no_project_list": False,
    "mirror_use_external_urls": False,
    "mirror_ignore_serial_header": False,
}
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def _coerce(field: str, value: Any) -> Any:
    kind = INDEX_OPTION_TYPES[field]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise DevpiError(f"index option {field} must be a boolean, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise DevpiError(f"index option {field} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise DevpiError(f"index option {field} must be an integer, got {value!r}") from None
    if kind == "list":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise DevpiError(f"index option {field} must be a list, got {value!r}")
        return [str(item) for item in value]
    return str(value)


def desired_index_options(options: dict[str, Any]) -> dict[str, Any]:
    """The given index options (None means not given), typed and normalised the way
    devpi-server stores them; unknown names and invalid bases are refused."""
    desired: dict[str, Any] = {}
    for field, value in options.items():
        if value is None:
            continue
        if field not in INDEX_OPTION_TYPES:
            raise DevpiError(
                f"unknown index option {field!r}; known: {', '.join(sorted(INDEX_OPTION_TYPES))}"
            )
        value = _coerce(field, value)
        if field == "bases":
            for base in value:
                split_index_name(base, "base")
        elif field == "acl_upload":
            value = normalize_acl(value)
        elif field == "mirror_whitelist":
            value = [normalize_project_name(name) for name in value]
        desired[field] = value
    return desired


def comparable(field: str, value: Any) -> Any:
    """A value as compared: bases in order, the ACL and whitelist as sets, an absent boolean
    mirror option as devpi-server reads it."""
    if field in ("acl_upload", "mirror_whitelist"):
        return sorted(set(value or []))
    if field == "bases":
        return list(value or [])
    if value is None and field in _OPTION_ABSENT_MEANS:
        return _OPTION_ABSENT_MEANS[field]
    return value


def index_changes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Those of the desired (normalised) options whose value differs from the current config."""
    return {
        field: value
        for field, value in desired.items()
        if comparable(field, current.get(field)) != comparable(field, value)
    }


class DevpiClient:
    """A small JSON client for one devpi-server."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30,
        validate_certs: bool = True,
        ca_path: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DevpiError(f"url must be an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.auth_user: str | None = None
        self._auth_header: str | None = None
        self._ssl_context: Any = None

    def _context(self) -> Any:
        """One TLS context for all requests of this client. open_url makes a new one for every
        request (even to http://), loading the system's CA certificates each time: ~50 ms."""
        if self._ssl_context is None:
            self._ssl_context = make_context(
                cafile=self.ca_path, validate_certs=self.validate_certs
            )
        return self._ssl_context

    def endpoint(self, *segments: str) -> str:
        """The URL of /seg1/seg2/..., each segment quoted."""
        return self.url + "".join("/" + quote(s, safe="@") for s in segments)

    def request(
        self,
        method: str,
        segments: tuple[str, ...],
        body: Any = None,
        *,
        query: str = "",
        allow: tuple[int, ...] = (),
        auth: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """Send one JSON request; return (status, parsed body).

        Statuses below 400 and those in ``allow`` are returned; anything else raises DevpiError
        with the server's own message.
        """
        url = self.endpoint(*segments) + ("?" + query if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth and self._auth_header:
            headers["X-Devpi-Auth"] = self._auth_header
        try:
            # what open_url does, with this client's TLS context
            response = Request().open(
                method,
                url,
                data=data,
                headers=headers,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                context=self._context(),
            )
            try:
                return response.status, self._parse(method, url, response.status, response.read())
            finally:
                response.close()
        except HTTPError as e:
            payload = self._parse(method, url, e.code, e.read(), strict=False)
            if e.code in allow:
                return e.code, payload
            raise DevpiError(self._http_message(method, url, e.code, payload)) from None
        # socket.timeout is TimeoutError only from Python 3.10 on; 3.9 runs modules on macOS
        except (socket.timeout, TimeoutError):  # noqa: UP041
            raise DevpiError(
                f"devpi-server at {self.url} did not answer {method} {url} within "
                f"{self.timeout} seconds"
            ) from None
        except SSLValidationError as e:
            raise DevpiError(
                f"cannot verify the TLS certificate of {self.url}: {e} (trust its CA with "
                "ca_path, or set validate_certs: false)"
            ) from None
        except URLError as e:
            raise DevpiError(
                f"cannot reach devpi-server at {self.url}: {e.reason} (is it running, and is "
                "url right?)"
            ) from None
        except (UrlsConnectionError, OSError) as e:
            raise DevpiError(f"cannot reach devpi-server at {self.url}: {e}") from None

    def _parse(
        self, method: str, url: str, status: int, raw: bytes, strict: bool = True
    ) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            if not strict:
                return {"message": raw.decode("utf-8", "replace").strip()[:200]}
            raise DevpiError(
                f"{method} {url} answered HTTP {status} with something that is not JSON: is "
                f"{self.url} a devpi-server?"
            ) from None
        if not isinstance(payload, dict):
            raise DevpiError(f"{method} {url} answered HTTP {status} with unexpected JSON")
        return payload

    def _http_message(self, method: str, url: str, status: int, payload: dict[str, Any]) -> str:
        message = str(payload.get("message") or "no message")
        text = f"{method} {url} failed with HTTP {status}: {message}"
        if status == 401:
            return text + " (log in with login_user and login_password)"
        if status == 403:
            who = f"user {self.auth_user!r}" if self.auth_user else "an anonymous request"
            return text + f" ({who} may not do this; check login_user and login_password)"
        return text

    # -- authentication -------------------------------------------------------------------

    def _post_login(self, user: str, password: str) -> tuple[int, dict[str, Any]]:
        return self.request(
            "POST", ("+login",), {"user": user, "password": password}, allow=(401,), auth=False
        )

    def login(self, user: str, password: str) -> None:
        """Log in; later requests carry the token in X-Devpi-Auth as devpi-client sends it."""
        status, payload = self._post_login(user, password)
        if status == 401:
            raise DevpiError(
                f"login as {user!r} at {self.url} failed (HTTP 401): "
                f"{payload.get('message', 'could not be authenticated')}; check login_user "
                "and login_password"
            )
        token = payload.get("result", {}).get("password")
        if not isinstance(token, str):
            raise DevpiError(f"login as {user!r} at {self.url}: the answer holds no token")
        self.auth_user = user
        self._auth_header = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")

    def password_works(self, user: str, password: str) -> bool:
        """True if user can log in with password (POST /+login answers 200, not 401)."""
        status, _payload = self._post_login(user, password)
        return status == 200

    # -- changing ---------------------------------------------------------------------------

    def patch_index(self, user: str, index: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH the full index configuration with changes applied, as devpi-client 7 does for
        servers without key=value parsing; a partial dict would reset plugin defaults."""
        config = dict(self.get_index(user, index) or {})
        config.pop("projects", None)
        config.update(changes)
        _status, payload = self.request("PATCH", (user, index), config)
        result: dict[str, Any] = payload.get("result") or config
        return result

    # -- reading ----------------------------------------------------------------------------

    def get_user(self, name: str) -> dict[str, Any] | None:
        status, payload = self.request("GET", (name,), allow=(404,))
        if status == 404:
            return None
        result: dict[str, Any] = payload.get("result") or {}
        return result

    def list_users(self) -> dict[str, dict[str, Any]]:
        _status, payload = self.request("GET", ())
        result: dict[str, dict[str, Any]] = payload.get("result") or {}
        return result

    def get_index(self, user: str, index: str) -> dict[str, Any] | None:
        """The index configuration without its project list, or None if it does not exist."""
        status, payload = self.request("GET", (user, index), query="no_projects=", allow=(404,))
        if status == 404:
            return None
        result: dict[str, Any] = payload.get("result") or {}
        return result

    def uploaded_projects(self, user: str, index: str) -> list[str]:
        """Projects that have release files or documentation uploaded to this stage itself."""
        status, payload = self.request("GET", (user, index), allow=(404,))
        if status == 404:
            return []
        found = []
        for project in payload.get("result", {}).get("projects", []):
            # ignore_bases: only this stage's own versions, never a lookup in a mirror base
            _status, versions = self.request(
                "GET", (user, index, project), query="ignore_bases=", allow=(404,)
            )
            for verdata in (versions.get("result") or {}).values():
                links = verdata.get("+links", []) if isinstance(verdata, dict) else []
                if any(link.get("rel") in _UPLOAD_RELS for link in links):
                    found.append(str(project))
                    break
        return sorted(found)

    def dependent_indexes(self, names: list[str]) -> list[str]:
        """Descriptions of other indexes that use any of ``names`` as a base."""
        targets = set(names)
        found = []
        for username, userconfig in sorted(self.list_users().items()):
            for index, ixconfig in sorted((userconfig.get("indexes") or {}).items()):
                own = f"{username}/{index}"
                if own in targets:
                    continue
                for base in ixconfig.get("bases") or []:
                    if base in targets:
                        found.append(f"{own} (bases: {base})")
        return found

    def missing_bases(self, bases: list[str]) -> list[str]:
        """Those of bases (validated USER/INDEX names) that do not exist on the server."""
        missing = []
        for base in bases:
            user, index = split_index_name(base, "base")
            if self.get_index(user, index) is None:
                missing.append(base)
        return missing


# The key under which run_module() hands the AnsibleModule to connect() in the params it passes
# on (the identity check runs systemctl/launchctl, lsof and ps through it).
MODULE_KEY = "__module"


def connect(params: dict[str, Any]) -> DevpiClient:
    """A client for the module's url, logged in when login_password is given - after, with
    service or nodeinfo, the server answering url has proved to be the devpi of this host
    (module_utils/devpi_host.identity_problem); else nothing is sent with the password."""
    client = DevpiClient(
        params["url"],
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
        ca_path=params.get("ca_path"),
    )
    if params.get("login_password") is None:
        return client
    if params.get("service") or params.get("nodeinfo"):
        try:
            status: dict[str, Any] | None = client.request("GET", ("+status",))[1].get("result")
        except DevpiError:
            status = None
        problem = identity_problem(
            params[MODULE_KEY], client.url, status, params.get("service"), params.get("nodeinfo")
        )
        if problem:
            raise DevpiError(problem)
    client.login(params["login_user"], params["login_password"])
    return client
