#!/usr/bin/env python3
"""A FAKE ``systemctl``, for tests only: it is NOT systemd (no systemd runs as PID 1 here).

A "cloud site" in the tests is a folder reached over a real sshd; ``Layout.systemctl`` points here:

    python3 fake_systemctl.py ROOT COMMAND [--now] [--quiet] UNIT...

It keeps the state of units under ROOT and starts REAL processes, so health checks run for real:

- ``ROOT/units/<unit>.json``: ``{"argv": [...]}``, written by the test: what the service runs
  (``"stop_fails": "MESSAGE"``: stopping it fails with MESSAGE, exit 1, and leaves it running);
- ``start`` / ``stop`` / ``restart`` / ``reload-or-restart`` / ``is-active`` of a service: the
  process is started detached (its pid in ``ROOT/run/<unit>.pid``) and stopped with SIGTERM,
  waiting until it is gone; ``try-restart PATTERN...`` restarts the running units that match;
- ``enable`` / ``disable`` of a service recorded in ``ROOT/enabled`` (``--now``: started, stopped);
  ``daemon-reload`` is accepted (no unit files to read: the definitions above are read each time);
- timers (``*.timer``): ``enable`` / ``disable`` / ``mask`` / ``unmask`` / ``start`` / ``stop``
  recorded as files in ``ROOT/enabled``, ``ROOT/masked``, ``ROOT/active``; a masked unit refuses to
  start or be enabled, as systemd does;
- every call is appended to ``ROOT/calls.log`` (``COMMAND UNIT...``), so tests see the order.

Exit codes as systemctl: 0 ok, 1 failed, 3 inactive (``is-active``), 5 no such unit.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not reaped by its new parent) is gone for us
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pid(root: Path, unit: str) -> int | None:
    try:
        pid = int((root / "run" / f"{unit}.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _start(root: Path, unit: str) -> int:
    if (root / "masked" / unit).exists():
        print(f"Failed to start {unit}: Unit {unit} is masked.", file=sys.stderr)
        return 1
    if unit.endswith(".timer"):
        (root / "active").mkdir(parents=True, exist_ok=True)
        (root / "active" / unit).touch()
        return 0
    definition = root / "units" / f"{unit}.json"
    if not definition.exists():
        print(f"Failed to start {unit}: Unit {unit} not found.", file=sys.stderr)
        return 5
    if _pid(root, unit) is not None:
        return 0
    argv = json.loads(definition.read_text())["argv"]
    (root / "run").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    with (root / "logs" / f"{unit}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )
    (root / "run" / f"{unit}.pid").write_text(str(proc.pid))
    return 0


def _stop(root: Path, unit: str, force: bool = False) -> int:
    if unit.endswith(".timer"):
        (root / "active" / unit).unlink(missing_ok=True)
        return 0
    definition = root / "units" / f"{unit}.json"
    refusal = json.loads(definition.read_text()).get("stop_fails") if definition.exists() else None
    if refusal and not force:
        print(refusal, file=sys.stderr)
        return 1
    pid = _pid(root, unit)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    (root / "run" / f"{unit}.pid").unlink(missing_ok=True)
    return 0


def _flag(root: Path, folder: str, unit: str, on: bool) -> None:
    path = root / folder / unit
    if on:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    else:
        path.unlink(missing_ok=True)


def _running(root: Path) -> list[str]:
    """Units running now: services with a live process, active timers."""
    services = [p.name[: -len(".pid")] for p in (root / "run").glob("*.pid") if _pid(root, p.name[:-4])]
    return sorted(services + [p.name for p in (root / "active").glob("*")])


def main(argv: list[str]) -> int:
    root, command, *rest = argv
    base = Path(root)
    now = "--now" in rest
    units = [a for a in rest if not a.startswith("--")]
    base.mkdir(parents=True, exist_ok=True)
    with (base / "calls.log").open("a") as log:
        log.write(" ".join([command, *units]) + "\n")
    if command == "daemon-reload":
        return 0
    if command == "try-restart":
        units = [u for u in _running(base) if any(fnmatch.fnmatchcase(u, pattern) for pattern in units)]
        command = "restart"
    rc = 0
    for unit in units:
        if command == "start":
            rc = max(rc, _start(base, unit))
        elif command == "stop":
            rc = max(rc, _stop(base, unit))
        elif command in ("restart", "reload-or-restart"):
            _stop(base, unit)
            rc = max(rc, _start(base, unit))
        elif command == "is-active":
            running = (base / "active" / unit).exists() if unit.endswith(".timer") else _pid(base, unit)
            if not running:
                rc = 3
        elif command == "enable":
            if (base / "masked" / unit).exists():
                print(f"Failed to enable unit: Unit file {unit} is masked.", file=sys.stderr)
                return 1
            _flag(base, "enabled", unit, True)
            rc = max(rc, _start(base, unit) if now else 0)
        elif command == "disable":
            _flag(base, "enabled", unit, False)
            rc = max(rc, _stop(base, unit) if now else 0)
        elif command == "mask":
            _flag(base, "masked", unit, True)
            rc = max(rc, _stop(base, unit) if now else 0)
        elif command == "unmask":
            _flag(base, "masked", unit, False)
        else:
            print(f"fake systemctl: unknown command {command}", file=sys.stderr)
            return 1
    return rc


def stop_all(root: Path) -> None:
    """Stop every process the fake started under ``root`` (tests' cleanup: a unit whose stop
    fails is stopped too)."""
    for pidfile in sorted((root / "run").glob("*.pid")) if (root / "run").is_dir() else []:
        _stop(root, pidfile.name[: -len(".pid")], force=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
