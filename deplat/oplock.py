"""Operation locks: one drill at a time per spec, and no drill while a watcher runs.

A lock is an ``flock`` on ``ProjectPaths.lock(name)`` (``deplat.files.exclusive_lock``'s file):
the kernel drops it when its holder dies, so ``kill -9`` never leaves one stuck. Beside it, each
holder writes a small JSON file (pid, process identity, command, since) so that a refusal names
who is in the way. ``hold(..., shared=True)`` takes a shared lock: several watchers may run at
once, and an exclusive holder (a drill) excludes them all, and they it.

A lock is exclusive between two holders even inside one process, unless its holder LENDS it
(``lend=True``): then every ``hold`` of the same lock in the same process, from any thread, joins
it for the lender's block instead of being refused. The drill lends the ``operation`` lock it holds
for its whole run to its own watcher and failovers, so they neither deadlock on it nor let another
process in between them.

    with oplock.hold(spec, "drill", "deplat drill"):          # refuses at once if taken
        ...
    with oplock.hold(spec, "operation", "deplat drill", lend=True):
        run_failover(...)                                     # joins the drill's lock
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.errors import InputError
from deplat.files import (
    FILE_MODE,
    filesystem_error,
    pid_alive,
    private_dir,
    process_identity,
    read_json,
    write_json_atomic,
)
from deplat.paths import paths

if TYPE_CHECKING:
    from deplat.spec.model import Spec


_lent: dict[str, int] = {}  # lock file -> holds joined now, for the locks lent in this process
_lent_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.since))
        return f"{self.command} (pid {self.pid}, since {when})"


class Busy(InputError):
    """The lock is held by another process (exit 2: nothing was done)."""

    def __init__(self, name: str, holders: list[Holder], hint: str | None = None) -> None:
        who = "; ".join(h.describe() for h in holders) or "another process"
        super().__init__(f"{who} already runs for this spec (lock: {name})", hint=hint)
        self.holders = holders


def holders(spec: Spec, name: str) -> list[Holder]:
    """The live processes that say they hold ``name`` (a dead holder's file is ignored)."""
    folder = paths(spec).lock_holders(name)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(InputError, OSError):
            doc = read_json(path) or {}
            pid = int(doc.get("pid", 0))
            if pid != os.getpid() and pid_alive(pid, doc.get("identity")):
                found.append(Holder(pid, str(doc.get("command", "?")), float(doc.get("since", 0))))
    return found


def _flock(fd: int, shared: bool) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _open(path: Path) -> int:
    private_dir(path.parent)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise filesystem_error(exc, path) from exc


@contextlib.contextmanager
def hold(
    spec: Spec,
    name: str,
    command: str,
    *,
    shared: bool = False,
    hint: str | None = None,
    lend: bool = False,
) -> Iterator[None]:
    """Hold lock ``name`` for the block, or raise ``Busy`` at once naming its holders. ``lend``:
    other holds of this lock in this process join this one (see the module's docstring)."""
    project = paths(spec)
    key = str(project.lock(name))
    if _join(key):
        try:
            yield
        finally:
            with _lent_guard:
                _lent[key] -= 1
        return
    fd = _open(project.lock(name))
    me = project.lock_holders(name) / f"{os.getpid()}.json"
    try:
        if not _flock(fd, shared):
            raise Busy(name, holders(spec, name), hint)
        write_json_atomic(
            me,
            {
                "pid": os.getpid(),
                "identity": process_identity(os.getpid()),
                "command": command,
                "since": time.time(),
            },
        )
        if lend:
            with _lent_guard:
                _lent[key] = 0
        try:
            yield
        finally:
            if lend:
                with _lent_guard:
                    _lent.pop(key, None)
            me.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _join(key: str) -> bool:
    """Join the hold of ``key`` this process lends, if it lends one."""
    with _lent_guard:
        if key not in _lent:
            return False
        _lent[key] += 1
        return True


def refuse_if_taken(spec: Spec, name: str, hint: str | None = None) -> None:
    """Raise ``Busy`` at once when another process (or a hold this process does not lend) holds
    ``name``: for a command that asks questions before it takes the lock."""
    with _lent_guard:
        if str(paths(spec).lock(name)) in _lent:
            return
    busy = taken(spec, name)
    if busy is not None:
        raise Busy(name, busy, hint)


def taken(spec: Spec, name: str) -> list[Holder] | None:
    """``None`` when nobody holds ``name`` now; else its holders (possibly unnamed: an empty list)."""
    fd = _open(paths(spec).lock(name))
    try:
        if _flock(fd, shared=False):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return holders(spec, name)
    finally:
        os.close(fd)
