"""The failover journal: a durable, append-only record of one failover's steps.

One JSON-lines file per failover under ``.deplat/journal/``. Every record is written, flushed and
fsynced before the step it announces (``start``) or after the step it concludes (``done``) goes on,
so after a crash (even ``kill -9``) the journal says which side effects already happened and
``deplat failover --resume`` continues from there without repeating them.

Records::

    {"seq": 0, "at": ..., "kind": "begin",  "data": {"from": "a", "to": "b", "reason": ..., ...}}
    {"seq": 1, "at": ..., "kind": "start",  "step": "decide"}
    {"seq": 2, "at": ..., "kind": "done",   "step": "decide", "data": {...the step's result...}}
    {"seq": 9, "at": ..., "kind": "end",    "data": {"outcome": "done" | "failed" | "conflict" | ...}}

Secret values are masked (``Masker``) before anything reaches the disk. A torn last line (a crash
in the middle of a write) is ignored when reading: that record was never acknowledged. A journal is
created whole (its ``begin`` record written to a temp file and renamed), so a full disk never leaves
an empty one; an append that fails (disk full) is cut back off, so the file stays readable and the
next append, once there is room, continues it.

A journal that ended ``partial`` (the traffic moved on some DNS providers, not all) is not finished:
``--resume`` or the watcher completes it. ``live_owner`` says whether a live process runs a journal
(its pid and start time are in the ``begin`` and ``resumed`` records).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deplat.files import filesystem_error, pid_alive, private_dir, process_identity, write_text_atomic
from deplat.paths import paths
from deplat.secrets import Masker
from deplat.spec.model import Spec

#: outcomes that leave the journal open: ``--resume`` (or the watcher) finishes the job
RESUMABLE_OUTCOMES = frozenset({"partial"})
#: journals a thread of this process runs now (a pid alone cannot tell our own threads apart)
_RUNNING: set[Path] = set()


def journal_dir(spec: Spec) -> Path:
    return paths(spec).journals


def owner_record() -> dict[str, Any]:
    """Who runs a journal: this process's pid and start time (so a reused pid is not mistaken)."""
    return {"pid": os.getpid(), "identity": process_identity(os.getpid()) or ""}


@dataclass
class Journal:
    """One failover's journal file and the records read from or written to it."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    masker: Masker = field(default_factory=Masker)

    # -- creating and reading ------------------------------------------------------------------
    @classmethod
    def create(cls, spec: Spec, begin: dict[str, Any], masker: Masker | None = None) -> Journal:
        """A new journal whose first record is ``begin`` (from, to, reason, ...)."""
        directory = private_dir(journal_dir(spec))
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}"
        path = directory / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl"  # names sort in creation order
        journal = cls(path=path, masker=masker or Masker())
        record = journal._record({"kind": "begin", "data": begin})
        write_text_atomic(path, journal._line(record))  # whole or not at all: never an empty journal
        journal.records.append(record)
        return journal

    @classmethod
    def load(cls, path: Path, masker: Masker | None = None) -> Journal:
        records: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line: never acknowledged
            if isinstance(record, dict):
                records.append(record)
        return cls(path=path, records=records, masker=masker or Masker())

    @classmethod
    def all(cls, spec: Spec) -> list[Journal]:
        """Every journal of this spec, oldest first (by creation)."""
        directory = journal_dir(spec)
        if not directory.is_dir():
            return []
        paths = sorted(directory.glob("*.jsonl"), key=lambda p: p.name)
        return [cls.load(p) for p in paths]

    @classmethod
    def newest_unfinished(cls, spec: Spec, masker: Masker | None = None) -> Journal | None:
        for journal in reversed(cls.all(spec)):
            if journal.begin and not journal.finished and journal.outcome != "superseded":
                journal.masker = masker or journal.masker
                return journal
        return None

    # -- writing -------------------------------------------------------------------------------
    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        masked: dict[str, Any] = self.masker.data({"seq": len(self.records), "at": time.time(), **record})
        return masked

    @staticmethod
    def _line(record: dict[str, Any]) -> str:
        return json.dumps(record, default=str, sort_keys=False) + "\n"

    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = self._record(record)
        data = self._line(record).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise filesystem_error(exc, self.path) from exc
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, size)  # no torn record left in the middle of the journal
                raise filesystem_error(exc, self.path) from exc
        finally:
            os.close(fd)
        self.records.append(record)
        return record

    def start(self, step: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._append({"kind": "start", "step": step, "data": data or {}})

    def done(self, step: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._append({"kind": "done", "step": step, "data": data or {}})

    def failed(self, step: str, error: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._append({"kind": "failed", "step": step, "error": error, "data": data or {}})

    def note(self, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._append({"kind": "note", "message": message, "data": data or {}})

    def end(self, outcome: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._append({"kind": "end", "data": {"outcome": outcome, **(data or {})}})

    @contextlib.contextmanager
    def running(self) -> Iterator[Journal]:
        """Mark this journal as run by this process for the ``with`` block (see ``live_owner``)."""
        _RUNNING.add(self.path)
        try:
            yield self
        finally:
            _RUNNING.discard(self.path)

    # -- reading -------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def begin(self) -> dict[str, Any]:
        first = self.records[0] if self.records else {}
        return dict(first.get("data", {})) if first.get("kind") == "begin" else {}

    @property
    def finished(self) -> bool:
        """Ended for good (a ``partial`` end is resumable: not finished)."""
        outcome = self.outcome
        return outcome is not None and outcome not in RESUMABLE_OUTCOMES

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    def owners(self) -> list[dict[str, Any]]:
        """The processes that ran this journal, oldest first (``begin``, then each ``resumed``)."""
        found = [self.begin] + [
            r.get("data", {})
            for r in self.records
            if r.get("kind") == "note" and r.get("message") == "resumed"
        ]
        return [o for o in found if isinstance(o.get("pid"), int)]

    def live_owner(self) -> int | None:
        """The pid of a live process that runs this journal now, if any (this very process only
        while one of its threads runs it)."""
        owners = self.owners()
        if not owners:
            return None
        owner = owners[-1]
        pid = int(owner["pid"])
        if pid == os.getpid():
            return pid if self.path in _RUNNING else None
        return pid if pid_alive(pid, owner.get("identity") or None) else None

    @property
    def outcome(self) -> str | None:
        for r in reversed(self.records):
            if r.get("kind") == "end":
                return str(r.get("data", {}).get("outcome"))
        return None

    def result_of(self, step: str) -> dict[str, Any] | None:
        """The latest recorded result of ``step`` if it was done, else None."""
        for r in reversed(self.records):
            if r.get("kind") == "done" and r.get("step") == step:
                return dict(r.get("data", {}))
        return None

    def started(self, step: str) -> bool:
        return any(r.get("kind") == "start" and r.get("step") == step for r in self.records)

    def attempts(self, step: str) -> int:
        """How many times ``step`` was started (more than one: it was resumed)."""
        return sum(1 for r in self.records if r.get("kind") == "start" and r.get("step") == step)

    def steps(self) -> list[dict[str, Any]]:
        """Per step: name, status (done/failed/started), seconds, result."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records:
            step = r.get("step")
            if not step:
                continue
            entry = out.setdefault(step, {"step": step, "status": "started", "started_at": r["at"]})
            if r["kind"] == "start":
                entry["attempts"] = entry.get("attempts", 0) + 1
            elif r["kind"] == "done":
                entry.update(status="done", done_at=r["at"], result=r.get("data", {}))
                entry["seconds"] = round(r["at"] - entry["started_at"], 3)
            elif r["kind"] == "failed":
                entry.update(status="failed", error=r.get("error"))
        return list(out.values())
