"""A local site's files and its state file, and how to tell whether a recorded process still lives.

The supervisor writes ``state.json`` (atomically) whenever one of its services starts, stops or
crashes; the driver reads it for ``status`` and to clean up after a supervisor that was killed.
It holds pids, process identities (start times, so a reused pid is never mistaken for ours),
config hashes, start times and restart counts: never a secret value.

The supervisor holds an exclusive ``flock`` on ``supervisor.pid`` for its whole life, so "is the
supervisor running?" is answered by the kernel rather than by a pid that may have been reused.
Standard library and ``deplat.files`` only: the supervisor imports this module.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import signal
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from deplat.files import pid_alive as process_alive
from deplat.files import process_identity

__all__ = ["process_alive", "process_identity"]  # the one pid check, under the names callers use

STATE_FILE = "state.json"
PID_FILE = "supervisor.pid"
SOCKET_FILE = "supervisor.sock"
OP_LOCK_FILE = ".op.lock"
SUPERVISOR_LOG = "supervisor.log"
# sun_path holds 108 bytes on Linux, 104 on macOS; longer site dirs get a socket in the temp dir.
MAX_SOCKET_PATH = 100


def state_path(site_dir: Path) -> Path:
    return site_dir / STATE_FILE


def logs_dir(site_dir: Path) -> Path:
    return site_dir / "logs"


def data_dir(site_dir: Path, service: str) -> Path:
    return site_dir / "data" / service


def log_path(site_dir: Path, service: str) -> Path:
    return logs_dir(site_dir) / f"{service}.log"


def runtime_dir() -> Path:
    """Where sockets go when a site dir's path is too long for one: ``$XDG_RUNTIME_DIR/deplat``
    (a private folder the login session provides), else ``/tmp/deplat-<uid>``. Either is checked
    before use (``private_folder_problem``): another user may have made it first."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "deplat"
    return Path(tempfile.gettempdir()) / f"deplat-{os.getuid()}"


def socket_path(site_dir: Path) -> Path:
    """The supervisor's control socket: in the site dir, or in ``runtime_dir()`` when that is too long."""
    site_dir = site_dir.resolve()
    path = site_dir / SOCKET_FILE
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(site_dir)).hexdigest()[:20]
    return runtime_dir() / f"{digest}.sock"


def private_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` must not hold our socket (not a real folder, another owner, open to others),
    or None when it is ours alone."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if info.st_uid != os.getuid():
        return f"{folder} belongs to uid {info.st_uid}, not to this user"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def read_state(site_dir: Path) -> dict[str, Any] | None:
    """The site's state file, or None when the site has none (never stood up, or destroyed)."""
    try:
        data = json.loads(state_path(site_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"services": {}, "unreadable": True}
    return data if isinstance(data, dict) else {"services": {}, "unreadable": True}


def supervisor_pid(site_dir: Path) -> int | None:
    """The running supervisor's pid, or None when no supervisor holds the site's pid-file lock."""
    path = site_dir / PID_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1  # locked, pid not written yet
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_leftovers(state: dict[str, Any], timeout: float = 5.0) -> int:
    """Stop the service processes a dead supervisor left behind; returns how many were alive.

    Only processes whose identity matches the state file are signalled (whole process groups:
    SIGTERM, then SIGKILL after ``timeout``).
    """
    alive = [
        svc
        for svc in state.get("services", {}).values()
        if isinstance(svc, dict) and process_alive(svc.get("pid"), svc.get("identity"))
    ]
    for svc in alive:
        kill_group(int(svc.get("pgid") or svc["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process_alive(s["pid"], s.get("identity")) for s in alive):
        time.sleep(0.05)
    for svc in alive:
        if process_alive(svc["pid"], svc.get("identity")):
            kill_group(int(svc.get("pgid") or svc["pid"]), signal.SIGKILL)
    return len(alive)


def lock_pid_file(site_dir: Path, timeout: float = 2.0) -> int | None:
    """Take the site's supervisor lock (held until exit) and write our pid; None if another holds it."""
    fd = os.open(site_dir / PID_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:  # a driver's probe holds it for a moment, or a supervisor for good
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
