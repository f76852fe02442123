"""The supervisor's control protocol: one JSON object per line over a Unix socket, one answer each.

Requests (from the driver):
    {"op": "ping"}                         -> {"ok": true, "pid": N}
    {"op": "apply", "services": {...}, "meta": {...}}
                                           -> {"ok": true, "changes": {"create": 1, ...}, "services": {...}}
    {"op": "status"}                       -> {"ok": true, "pid": N, "services": {...}}
    {"op": "restart", "services": [names] or null (all)}
                                           -> {"ok": true, "changes": {"update": n}, "services": {...}}

``apply`` carries the services' environments, secret values included: that is why the socket is
the channel (owner-only permissions, nothing on disk) rather than a file or the command line.
Stopping the supervisor is a plain SIGTERM.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

MAX_MESSAGE = 16 * 1024 * 1024


class ControlError(Exception):
    """The supervisor could not be reached or gave no valid answer."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode("utf-8") + b"\n")


def receive(sock: socket.socket) -> dict[str, Any]:
    """Read one line (bounded in size) and decode it; ``ControlError`` on EOF or garbage."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ControlError("connection closed before a full message")
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
        if size > MAX_MESSAGE:
            raise ControlError("message too large")
    line = b"".join(chunks).split(b"\n", 1)[0]
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ControlError("not a JSON object")
    return message


def call(path: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send ``request`` to the supervisor listening on ``path`` and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            send(sock, request)
            return receive(sock)
        except OSError as exc:
            raise ControlError(f"supervisor at {path}: {exc.strerror or exc}") from None
