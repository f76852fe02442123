"""State locks of the embedded file backend: find the ones a killed run left behind.

A run of the ``pulumi`` CLI writes ``<state>/.pulumi/locks/organization/<project>/<stack>/<id>.json``
(``pid``, ``username``, ``hostname``, ``timestamp``) and removes it when done. A killed run leaves it,
and every later run of that site fails with "the stack is currently locked". A lock is *stale* when it
was taken on this host by a process that no longer exists. Stale locks are only ever removed when the
user asked (``--clear-locks``); a live or foreign lock is never touched.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.files import pid_alive
from deplat.paths import ProjectPaths

if TYPE_CHECKING:
    from deplat.spec.model import Spec


@dataclass(frozen=True)
class Lock:
    path: Path
    pid: int | None
    hostname: str
    username: str
    timestamp: str
    stale: bool

    def describe(self) -> str:
        state = "stale: its process is gone" if self.stale else "held"
        return f"lock by {self.username}@{self.hostname} pid {self.pid} since {self.timestamp} ({state})"


def lock_dirs(spec: Spec, stack: str) -> list[Path]:
    """Where the file backend keeps the stack's locks; none for another backend (it keeps its own)."""
    root = ProjectPaths.of(spec).state_backend_dir
    if root is None:
        return []
    base = root / ".pulumi" / "locks"
    return [base / "organization" / spec.app / stack, base / stack]


def read_lock(path: Path) -> Lock:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    pid = data.get("pid")
    pid = pid if isinstance(pid, int) else None
    host = str(data.get("hostname", ""))
    here = host in {socket.gethostname(), os.uname().nodename}
    stale = here and pid is not None and not pid_alive(pid)
    return Lock(
        path=path,
        pid=pid,
        hostname=host,
        username=str(data.get("username", "")),
        timestamp=str(data.get("timestamp", "")),
        stale=stale,
    )


def find_locks(spec: Spec, stack: str) -> list[Lock]:
    locks: list[Lock] = []
    for folder in lock_dirs(spec, stack):
        if folder.is_dir():
            locks += [read_lock(p) for p in sorted(folder.glob("*.json"))]
    return locks


def clear_stale(spec: Spec, stack: str) -> list[Lock]:
    """Remove this stack's stale locks (only those); returns what was removed."""
    removed = []
    for lock in find_locks(spec, stack):
        if lock.stale:
            lock.path.unlink(missing_ok=True)
            removed.append(lock)
    return removed
