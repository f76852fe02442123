"""The front door as its own supervised process, so that it serves whatever watcher runs or stops.

``deplat up`` starts it for a spec without DNS (so the app's URL answers right after ``up``);
watchers only SWITCH it (``deplat.failover.frontdoor.switch``; they start one at their start if
``up`` predates it): stopping a watcher leaves it serving. ``deplat destroy`` of the primary stops
it (nothing is left to forward to).

Two processes: a small SUPERVISOR, and the DOOR it runs as its child. When the door dies (``kill
-9``, a crash) the supervisor starts it again at once, with a backoff when it keeps dying (0.1 s,
doubled up to 5 s, back to 0.1 s once one lived 10 s); the new door reads where to forward from the
front door's state file (``deplat.failover.frontdoor``), so it routes as the old one did. A door
whose supervisor is gone stops within half a second (a front door nobody supervises or can stop is
worse than none: the next ``up`` or watcher starts a supervised one). ``stop`` ends the supervisor,
which ends its door.

Exactly one supervisor runs per spec: it holds ``.deplat/locks/frontdoor-process.lock`` (an
``flock``, released by the kernel when it dies) for its whole life; a second one started at the
same moment finds the lock taken and exits quietly. Its pid, its door's pid and the URLs are in
``.deplat/frontdoor/process.json``; both processes' errors in ``.deplat/frontdoor/log``.

    python -m deplat.failover.frontdoor_process SPEC_FILE         # the supervisor (ensure_running)
    python -m deplat.failover.frontdoor_process --door SPEC_FILE  # the door (its supervisor starts it)
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

MODULE = "deplat.failover.frontdoor_process"
START_TIMEOUT = 10.0
FIRST_BACKOFF, MAX_BACKOFF, HEALTHY_AFTER = 0.1, 5.0, 10.0  # seconds: restarts of a door that died
CANNOT_LISTEN = 2  # the door's exit code when its address or port is taken
_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "PYTHONHOME", "DEPLAT_FRONT_DOOR")


@dataclass(frozen=True)
class FrontDoorProcess:
    pid: int  # the supervisor's
    identity: str
    urls: list[str]
    door_pid: int = 0  # the door's (the process that listens), 0 when unknown
    door_identity: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "door_pid": self.door_pid, "urls": list(self.urls)}


def _record_path(spec: Spec) -> Path:
    return paths(spec).front_door_process / "process.json"


def _recorded(spec: Spec) -> FrontDoorProcess | None:
    try:
        data = read_json(_record_path(spec))
    except InputError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    door = data.get("door_pid")
    return FrontDoorProcess(
        data["pid"],
        str(data.get("identity", "")),
        list(data.get("urls", [])),
        door if isinstance(door, int) else 0,
        str(data.get("door_identity", "")),
    )


def running(spec: Spec) -> FrontDoorProcess | None:
    """The front door (its supervisor) of this spec, if it runs."""
    found = _recorded(spec)
    return found if found is not None and pid_alive(found.pid, found.identity or None) else None


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
    None when the spec needs no front door (it has DNS, or no public port) or its primary is not a
    local site (the front door forwards only to local sites). ``InputError`` when it
    cannot listen (the address or port is taken)."""
    if not frontdoor.uses_front_door(spec) or not frontdoor.front_door_ports(spec):
        return None
    from deplat.state import load_active

    if not frontdoor.forwards_to(spec, load_active(spec).primary):
        return None  # a cloud primary without DNS: nothing on this machine to forward to it
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
            [sys.executable, "-m", MODULE, str(spec.source)],
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
    """Stop the front door (its supervisor, which stops its door); True when one was running."""
    found = _recorded(spec)
    if found is None:
        return False
    was_running = False
    # the door too, should its supervisor be gone (known by its identity only: never another process)
    pairs = [(found.pid, found.identity or None)]
    if found.door_identity:
        pairs.append((found.door_pid, found.door_identity))
    for pid, identity in pairs:
        if pid_alive(pid, identity):
            was_running = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid, identity) and time.monotonic() < deadline:
                time.sleep(0.05)
    return was_running


def _stopping() -> threading.Event:
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping


def supervise(spec: Spec) -> int:
    """The supervisor: hold the lock, run the door as a child and start it again whenever it dies,
    until SIGTERM (then stop the door). Exits 2 when the very first door cannot listen."""
    stopping = _stopping()
    try:
        lock = exclusive_lock(paths(spec).lock("frontdoor-process"), timeout=0, what="the front door")
        lock.__enter__()
    except TimeoutError:
        return 0  # another one runs: it serves
    backoff, starts = FIRST_BACKOFF, 0
    door: subprocess.Popen[bytes] | None = None
    try:
        while not stopping.is_set():
            door = subprocess.Popen([sys.executable, "-m", MODULE, "--door", str(spec.source)])
            started, starts = time.monotonic(), starts + 1
            record = {
                "pid": os.getpid(),
                "identity": process_identity(os.getpid()) or "",
                "urls": frontdoor.FrontDoor(spec).urls,
                "door_pid": door.pid,
                "door_identity": process_identity(door.pid) or "",
            }
            with contextlib.suppress(InputError):  # a full disk: serve all the same (callers see the port)
                write_json_atomic(_record_path(spec), record)
            while door.poll() is None and not stopping.wait(0.05):
                pass
            if stopping.is_set():
                break
            if starts == 1 and door.returncode == CANNOT_LISTEN:
                return CANNOT_LISTEN  # its reason is in the log; ensure_running reports it
            backoff = FIRST_BACKOFF if time.monotonic() - started >= HEALTHY_AFTER else backoff
            print(
                f"the front door (pid {door.pid}) ended with {door.returncode}: "
                f"starting it again in {backoff:g} s",
                file=sys.stderr,
                flush=True,
            )
            stopping.wait(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)
        return 0
    finally:
        if door is not None and door.poll() is None:
            door.terminate()
            try:
                door.wait(timeout=5)
            except subprocess.TimeoutExpired:
                door.kill()
                door.wait()
        with contextlib.suppress(OSError):
            _record_path(spec).unlink()
        lock.__exit__(None, None, None)


def serve(spec: Spec) -> int:
    """The door: listen, forward to where the front door's state file says, until SIGTERM or until
    its supervisor is gone."""
    from deplat.state import load_active

    stopping = _stopping()
    supervisor = os.getppid()
    door = frontdoor.FrontDoor(spec, timeout=spec.failover.timeout)
    try:
        door.start(load_active(spec).primary)
    except OSError as exc:
        print(f"{door.address}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return CANNOT_LISTEN
    try:
        while not stopping.wait(0.5) and os.getppid() == supervisor:
            pass
    finally:
        door.stop()
    return 0


def main(argv: list[str]) -> int:
    from deplat.spec import load_spec

    door = argv[:1] == ["--door"]
    if len(argv) != 1 + door:
        print(f"usage: python -m {MODULE} [--door] SPEC_FILE", file=sys.stderr)
        return 2
    spec = load_spec(argv[-1])
    return serve(spec) if door else supervise(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
