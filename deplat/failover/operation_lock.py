"""One operation at a time per spec, and who runs it; which watchers run.

An operation that changes where the app lives (a failover, a rejoin, a drill) holds
``.deplat/locks/operation.lock`` (an ``flock``: it dies with its holder) for its whole run, and writes
into it its pid, start time and command. A second one does not wait: it fails at once naming the
holder (``OperationBusy``, exit 1). Within one process the lock is re-entrant (a drill runs a watcher
that runs a failover).

Watchers do not hold it while they only watch (two watchers may run; the traffic switch's
compare-and-swap makes their failovers one): each registers in ``.deplat/watchers/<pid>.json`` and
takes the operation lock only while it fails over. ``running_watchers`` tells a drill who watches.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deplat.errors import FilesystemError, OperationFailed
from deplat.files import exclusive_lock, pid_alive, process_identity, read_json, write_json_atomic
from deplat.paths import paths
from deplat.spec.model import Spec

_held: dict[Path, int] = {}  # lock path -> depth, for this process
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: float
    identity: str = ""

    def describe(self) -> str:
        return (
            f"pid {self.pid} ({self.command}, since {time.strftime('%H:%M:%S', time.localtime(self.since))})"
        )

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid, self.identity or None)

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(os.getpid(), command, time.time(), process_identity(os.getpid()) or "")

    @classmethod
    def of(cls, data: Any) -> Holder | None:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return None
        return cls(
            data["pid"],
            str(data.get("command", "?")),
            float(data.get("since", 0)),
            str(data.get("identity", "")),
        )


class OperationBusy(OperationFailed):
    """Another operation on this spec runs now."""

    def __init__(self, what: str, holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"cannot {what}: another operation on this spec runs now: {who}",
            hint="wait for it to finish (or stop it), then run this again",
        )
        self.holder = holder


def command_line() -> str:
    """This process's command, short, for a lock's holder record (argv holds no secret values)."""
    args = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    return " ".join(args)[:200]


def holder(spec: Spec) -> Holder | None:
    """Who holds the operation lock now (None when nobody does)."""
    path = paths(spec).lock("operation")
    try:
        found = Holder.of(json.loads(path.read_text(encoding="utf-8") or "null"))
    except (OSError, ValueError):
        return None
    return found if found is not None and found.alive else None


@contextlib.contextmanager
def operation_lock(spec: Spec, what: str, command: str | None = None) -> Iterator[Holder]:
    """Hold the spec's operation lock for the ``with`` block, or raise ``OperationBusy`` at once."""
    path = paths(spec).lock("operation")
    me = Holder.me(command or command_line())
    with _held_guard:
        depth = _held.get(path, 0)
        if depth:
            _held[path] = depth + 1
    if depth:
        try:
            yield me
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(exclusive_lock(path, timeout=0, what="the operation lock"))
        except TimeoutError:
            raise OperationBusy(what, holder(spec)) from None
        with contextlib.suppress(OSError):  # the holder's name is a courtesy; the flock is the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(me)).encode(), 0)
        with _held_guard:
            _held[path] = 1
        try:
            yield me
        finally:
            with _held_guard:
                _held.pop(path, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)


# --- watchers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def registered_watcher(spec: Spec, name: str) -> Iterator[None]:
    """Say, for the ``with`` block, that this process watches the spec (best effort: a full disk
    must not stop a watcher)."""
    path = paths(spec).watchers / f"{os.getpid()}.json"
    record = {**asdict(Holder.me(command_line())), "name": name}
    with contextlib.suppress(FilesystemError):
        write_json_atomic(path, record)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def running_watchers(spec: Spec) -> list[Holder]:
    """The watchers of this spec that run now (a drill refuses while one does)."""
    folder = paths(spec).watchers
    found: list[Holder] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            watcher = Holder.of(read_json(path))
        except FilesystemError:
            continue
        if watcher is not None and watcher.alive:
            found.append(watcher)
        elif watcher is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # a watcher killed with -9 left it
    return found
