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
Before a request is sent, the socket's folder must be ours alone and the listening process must run
as this user (``SO_PEERCRED``): a socket planted by another user gets nothing. Stopping the
supervisor is a plain SIGTERM. ``listen`` is the supervisor's side: an owner-only socket in a
folder that is ours alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

from deplat.local import sitestate

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


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket (None where the
    platform cannot tell)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def call(path: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send ``request`` to the supervisor listening on ``path`` and return its answer; refuses a
    socket in a folder others control, or one another user listens on."""
    from deplat.local.sitestate import private_folder_problem

    problem = private_folder_problem(path.parent)
    if problem:
        raise ControlError(f"refusing the supervisor socket {path}: {problem}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            uid = peer_uid(sock)
            if uid is not None and uid != os.getuid():
                raise ControlError(
                    f"refusing the supervisor socket {path}: it is served by uid {uid}, not us"
                )
            send(sock, request)
            return receive(sock)
        except OSError as exc:
            raise ControlError(f"supervisor at {path}: {exc.strerror or exc}") from None


def listen(path: Path) -> socket.socket:
    """Listen on ``path``; its folder is the site dir or the runtime dir, and must be ours alone."""
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(mode=0o700)
    problem = sitestate.private_folder_problem(path.parent)
    if problem:
        raise SystemExit(f"supervisor: refusing to listen on {path}: {problem}")
    path.unlink(missing_ok=True)  # a stale socket from a killed supervisor: we hold the lock
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # owner only: apply requests carry secret values
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(16)
    return listener
