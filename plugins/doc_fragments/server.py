# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Options every mcquack.devpi module that talks to devpi-server's HTTP API shares."""

from __future__ import annotations


class ModuleDocFragment:
    """Documentation of the shared connection options (module_utils/devpi_api.py)."""

    DOCUMENTATION = r"""
options:
  url:
    description:
      - The devpi-server's root URL, including any path prefix it is served under.
    type: str
    default: http://127.0.0.1:3141
  login_user:
    description: The devpi user to log in as to make changes (C(root), or an index's owner).
    type: str
    default: root
  login_password:
    description:
      - The password of O(login_user). Without it requests are anonymous, which is enough to
        read but not to change anything.
    type: str
  validate_certs:
    description: Verify the server's TLS certificate when O(url) is C(https://).
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify the server's TLS certificate with, for example
        the CA of the reverse proxy in front of devpi-server. The system's trust store otherwise.
    type: path
  timeout:
    description: Seconds to wait for each answer of the server.
    type: int
    default: 30
  service:
    description:
      - For a devpi-server on this host - the job that runs it (a systemd unit such as
        C(devpi.service), or a launchd service target such as C(gui/501/mcquack.eblume.devpi)).
        Before O(login_password) is sent, the process that job runs must hold the socket
        listening on O(url)'s port; else the module fails naming what holds it, and sends
        nothing.
      - For a remote devpi-server (O(url) on another host, for example over https), leave it
        out - the module then trusts O(url) as far as its TLS certificate proves it
        (O(validate_certs), O(ca_path)), and nothing more.
    type: str
  nodeinfo:
    description:
      - For a devpi-server on this host - its server-dir's C(.nodeinfo). Before
        O(login_password) is sent, the server's C(/+status) must report that file's C(uuid);
        else the module fails and sends nothing.
    type: path
"""

    # Every module of the collection is in meta/runtime.yml's action group devpi.
    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/mcquack.devpi.devpi) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mcquack.devpi.devpi
"""
