"""The front door as its own process, so that it serves whatever watcher runs or stops.

``deplat up`` starts it for a spec without DNS (so the app's URL answers right after ``up``); every
watcher makes sure it runs at each start and cycle (it restarts one that died) and only SWITCHES it
(``deplat.failover.frontdoor.switch``): stopping a watcher leaves it serving. ``deplat destroy`` of
the primary stops it (nothing is left to forward to).

Exactly one runs per spec: the process holds ``.deplat/locks/frontdoor-process.lock`` (an ``flock``,
released by the kernel when it dies) for its whole life; a second one started at the same moment
finds the lock taken and exits quietly. Its pid, start time and URLs are in
``.deplat/frontdoor/process.json``; its errors in ``.deplat/frontdoor/log``.

    python -m deplat.failover.frontdoor_process SPEC_FILE     # what ensure_running starts, detached
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deplat.errors import InputError
from deplat.failover import frontdoor
from deplat.files import (
    exclusive_lock,
    pid_alive,
    private_dir,
    process_identity,
    read_json,
    write_json_atomic,
)
from deplat.paths import paths
from deplat.spec.model import Spec

START_TIMEOUT = 10.0
_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "PYTHONHOME", "DEPLAT_FRONT_DOOR")


@dataclass(frozen=True)
class FrontDoorProcess:
    pid: int
    identity: str
    urls: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "urls": list(self.urls)}


def _record_path(spec: Spec) -> Path:
    return paths(spec).front_door_process / "process.json"


def running(spec: Spec) -> FrontDoorProcess | None:
    """The front door process of this spec, if it runs."""
    try:
        data = read_json(_record_path(spec))
    except InputError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    found = FrontDoorProcess(data["pid"], str(data.get("identity", "")), list(data.get("urls", [])))
    return found if pid_alive(found.pid, found.identity or None) else None


def _listening(spec: Spec) -> bool:
    ports = frontdoor.front_door_ports(spec)
    if not ports:
        return False
    with (
        contextlib.suppress(OSError),
        socket.create_connection((frontdoor.front_door_address(spec), ports[0]), timeout=0.3),
    ):
        return True
    return False


def ensure_running(spec: Spec) -> FrontDoorProcess | None:
    """Start the front door process unless it runs (idempotent; safe from many processes at once).
    None when the spec needs no front door (it has DNS, or no public port). ``InputError`` when it
    cannot listen (the address or port is taken)."""
    if not frontdoor.uses_front_door(spec) or not frontdoor.front_door_ports(spec):
        return None
    current = running(spec)
    if current is not None:
        return current
    if _listening(spec):  # one serves there already (its record could not be written: a full disk)
        return FrontDoorProcess(0, "", frontdoor.FrontDoor(spec).urls)
    if spec.source is None:
        raise InputError("the front door needs the spec's file", hint="load the spec from a file")
    folder = private_dir(paths(spec).front_door_process)
    log = folder / "log"
    # Only what Python and the front door need: no credentials in a long-lived process.
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEYS}
    package_root = str(Path(__file__).resolve().parents[2])  # this very deplat, wherever it is
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(log, "ab") as out:
        os.chmod(log, 0o600)
        child = subprocess.Popen(
            [sys.executable, "-m", "deplat.failover.frontdoor_process", str(spec.source)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # not in the caller's process group: a Ctrl-C there leaves it
            cwd=str(spec.base_dir),
            env=env,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        current = running(spec)
        if current is not None and _listening(spec):
            return current
        if child.poll() is not None:
            current = running(spec)  # another start won the lock: it serves
            if current is not None:
                return current
            if child.returncode != 0:
                break
        time.sleep(0.05)
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
    raise InputError(
        f"cannot start the front door on {frontdoor.front_door_address(spec)}: "
        + (tail[0] if tail else "it did not start"),
        hint="set DEPLAT_FRONT_DOOR=ADDRESS to another loopback address",
    )


def stop(spec: Spec, timeout: float = 5.0) -> bool:
    """Stop the front door process; True when one was running."""
    current = running(spec)
    if current is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(current.pid, current.identity or None) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def serve(spec: Spec) -> int:
    """The process itself: hold the lock, listen, forward to the active primary until SIGTERM."""
    from deplat.state import load_active

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        lock = exclusive_lock(paths(spec).lock("frontdoor-process"), timeout=0, what="the front door")
        lock.__enter__()
    except TimeoutError:
        return 0  # another one runs: it serves
    door = frontdoor.FrontDoor(spec, timeout=spec.failover.timeout)
    try:
        door.start(load_active(spec).primary)
    except OSError as exc:
        print(f"{door.address}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 2
    record = {"pid": os.getpid(), "identity": process_identity(os.getpid()) or "", "urls": door.urls}
    with contextlib.suppress(InputError):  # a full disk: serve all the same (callers see the port)
        write_json_atomic(_record_path(spec), record)
    try:
        stopping.wait()
    finally:
        door.stop()
        with contextlib.suppress(OSError):
            _record_path(spec).unlink()
    return 0


def main(argv: list[str]) -> int:
    from deplat.spec import load_spec

    if len(argv) != 1:
        print("usage: python -m deplat.failover.frontdoor_process SPEC_FILE", file=sys.stderr)
        return 2
    return serve(load_spec(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
