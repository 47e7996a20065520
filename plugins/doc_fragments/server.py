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
