#!/usr/bin/env python
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 mcquack.devpi contributors
"""Something else on devpi's port: an HTTP server that answers every request as devpi's /+api
would (200, JSON) and writes down every request it gets, body included - what a local process
that took devpi's port while devpi was down would see. The tests use it to prove that nothing
is sent to it with a password (tests/unit/plugins/module_utils/test_devpi_host.py in this
process, molecule/default/tests/test_trust.py on a test host as a script:
`python3 -c "$(source)" PORT LOG`)."""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
from typing import Any


class Impostor(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Answers every request with devpi-like JSON; `seen` holds "METHOD PATH BODY" of each, and
    so does the file `log` when given (a line each)."""

    daemon_threads = True

    def __init__(self, port: int, log: str | None = None) -> None:
        self.seen: list[str] = []
        self.log = log
        super().__init__(("127.0.0.1", port), _Handler)

    def record(self, line: str) -> None:
        self.seen.append(line)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as out:
                out.write(line + "\n")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Impostor

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self.server.record(f"{self.command} {self.path} {body}".rstrip())
        answer = json.dumps({"type": "apiconfig", "result": {"login": "/+login"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        del args


if __name__ == "__main__":
    Impostor(int(sys.argv[1]), sys.argv[2]).serve_forever()
