# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Writes belong to root by default (devpi_restrict_modify: root, the role's default, which
this scenario does not override): on the converged host nobody registers anonymously, a user
the role declared uploads to their own index but cannot make one. The same behaviour, including
users who registered before the option was set, is tested against a real devpi-server 6.20.3 on
the controller (tests/unit/test_restrict_modify.py)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import yaml

API = "http://127.0.0.1:3141"
EBLUME = ("eblume", "molecule-Eblume-Pw-2")  # declared in molecule.yml's group_vars

# A write as a user: log in, then send the request with the token, as devpi-client does; prints
# the HTTP status. Anonymous when no user is given.
_AS_USER = r"""
import base64, json, sys, urllib.error, urllib.request

api, method, path, body, user, password = sys.argv[1:7]
request = urllib.request.Request(api + path, body.encode(), method=method)
request.add_header("Content-Type", "application/json")
request.add_header("Accept", "application/json")
if user:
    login = urllib.request.Request(api + "/+login", json.dumps({"user": user, "password": password}).encode(), method="POST")
    token = json.load(urllib.request.urlopen(login))["result"]["password"]
    request.add_header("X-Devpi-Auth", base64.b64encode(f"{user}:{token}".encode()).decode())
try:
    print(urllib.request.urlopen(request).status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


def write_status(
    host: Any, method: str, path: str, body: Any, user: str = "", password: str = ""
) -> int:
    argv = ["python3", "-c", _AS_USER, API, method, path, json.dumps(body), user, password]
    return int(host.check_output(shlex.join(argv)))


def test_the_config_restricts_modify_to_root(host: Any) -> None:
    config = yaml.safe_load(host.file("/var/lib/devpi/devpi-server.yml").content_string)
    assert config["devpi-server"]["restrict-modify"] == "root"


def test_anonymous_registration_is_refused(host: Any, devpi: Any) -> None:
    assert write_status(host, "PUT", "/mallory", {"password": "mallory-Pw-9"}) == 403
    assert devpi.status("/mallory") == 404


def test_a_declared_user_uploads_to_their_own_index(devpi: Any) -> None:
    devpi.upload(*EBLUME, "eblume/dev", "writes-probe", "1.0")  # asserts HTTP 200
    assert "writes-probe" in devpi.get("/eblume/dev")["result"]["projects"]


def test_a_declared_user_cannot_register_others_or_make_indexes(host: Any, devpi: Any) -> None:
    assert write_status(host, "PUT", "/eblume/made-by-eblume", {"type": "stage"}, *EBLUME) == 403
    assert write_status(host, "PUT", "/trudy", {"password": "trudy-Pw-8"}, *EBLUME) == 403
    assert devpi.status("/eblume/made-by-eblume") == 404
    assert devpi.status("/trudy") == 404
