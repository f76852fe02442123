"""Starting and stopping a local site's supervisor process, and asking it what it runs.

The supervisor (``deplat.local.supervisor``) is a detached process that outlives deplat; it holds a
flock on ``supervisor.pid`` while it runs (``sitestate.supervisor_pid``) and answers on its control
socket (``deplat.local.control``). This module starts one with only the environment Python needs,
waits until it answers, stops it (SIGTERM, then SIGKILL), and removes the files it leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deplat.events import Emit, Event, EventKind
from deplat.local import control, sitestate
from deplat.local.runs import BASE_ENV_KEYS

LOG_TAIL_LINES = 12
SUPERVISOR_COMMAND = (sys.executable, "-m", "deplat.local.supervisor")


def live_services(site_dir: Path) -> dict[str, Any] | None:
    """The running supervisor's own account of its services, or None when it does not answer."""
    try:
        reply = control.call(sitestate.socket_path(site_dir), {"op": "status"}, timeout=3.0)
    except control.ControlError:
        return None
    return reply.get("services", {}) if reply.get("ok") else None


def ensure_supervisor(
    site_name: str, site_dir: Path, emit: Emit, start_timeout: float, stop_timeout: float
) -> None:
    """A supervisor that answers for ``site_dir``: the running one, or a new one (a running one that
    does not answer is replaced). Raises ``control.ControlError`` with its log's tail if none starts."""
    sock = sitestate.socket_path(site_dir)
    if sitestate.supervisor_pid(site_dir) is not None:
        try:
            control.call(sock, {"op": "ping"}, timeout=3.0)
            return
        except control.ControlError:  # holds the lock but does not answer: replace it
            stop_supervisor(site_dir, stop_timeout)
    state = sitestate.read_state(site_dir)
    if state:
        sitestate.stop_leftovers(state)  # a supervisor killed with -9 may have left services
    emit(Event(EventKind.SITE_OP, "starting supervisor", site=site_name, data={"op": "up"}))
    # Only what Python needs: the caller's credentials and passphrase stay out of a long-lived process.
    keep = (*BASE_ENV_KEYS, "PYTHONPATH", "PYTHONHOME", "XDG_RUNTIME_DIR")  # the socket's folder
    env = {k: v for k, v in os.environ.items() if k in keep}
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        log_fd = os.open(site_dir / sitestate.SUPERVISOR_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(log_fd, "ab") as log:
            subprocess.run(
                [*SUPERVISOR_COMMAND, "--site-dir", str(site_dir), "--site", site_name, "--detach"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=site_dir,
                start_new_session=True,
                check=True,
                timeout=start_timeout,
            )
    except subprocess.SubprocessError as exc:
        tail = log_tail(site_dir / sitestate.SUPERVISOR_LOG)
        raise control.ControlError(f"the supervisor did not start: {exc}\n{tail}") from None
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            control.call(sock, {"op": "ping"}, timeout=1.0)
            return
        except control.ControlError as exc:
            if time.monotonic() > deadline:
                tail = log_tail(site_dir / sitestate.SUPERVISOR_LOG)
                raise control.ControlError(f"the supervisor did not start: {exc}\n{tail}") from None
            time.sleep(0.01)


def stop_supervisor(site_dir: Path, stop_timeout: float) -> None:
    """SIGTERM the supervisor and wait for its lock to go; SIGKILL if it does not stop in time."""
    pid = sitestate.supervisor_pid(site_dir)
    if pid is None:
        return
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    while sitestate.supervisor_pid(site_dir) is not None:
        if time.monotonic() > deadline:
            pid = sitestate.supervisor_pid(site_dir)
            if pid and pid > 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            if sitestate.supervisor_pid(site_dir) is None:
                break
        time.sleep(0.02)


def remove_site_files(site_dir: Path) -> None:
    """The supervisor's state, pid file, socket and logs; the services' data stays."""
    for name in (sitestate.STATE_FILE, sitestate.PID_FILE, sitestate.SUPERVISOR_LOG):
        (site_dir / name).unlink(missing_ok=True)
    sitestate.socket_path(site_dir).unlink(missing_ok=True)
    shutil.rmtree(sitestate.logs_dir(site_dir), ignore_errors=True)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (reading at most its last 16 KiB); "" if it cannot be read."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 16384, 0))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
