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
in the middle of a write) is ignored when reading: that record was never acknowledged.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deplat.paths import home
from deplat.secrets import Masker
from deplat.spec.model import Spec


def journal_dir(spec: Spec) -> Path:
    return home(spec) / "journal"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        directory = journal_dir(spec)
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}"
        path = directory / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl"  # names sort in creation order
        journal = cls(path=path, masker=masker or Masker())
        journal._append({"kind": "begin", "data": begin})
        _fsync_dir(directory)
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
            if journal.begin and not journal.finished:
                journal.masker = masker or journal.masker
                return journal
        return None

    # -- writing -------------------------------------------------------------------------------
    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"seq": len(self.records), "at": time.time(), **record}
        record = self.masker.data(record)
        line = json.dumps(record, default=str, sort_keys=False) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
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
        return any(r.get("kind") == "end" for r in self.records)

    @property
    def outcome(self) -> str | None:
        for r in reversed(self.records):
            if r.get("kind") == "end":
                return str(r.get("data", {}).get("outcome"))
        return None

    def result_of(self, step: str) -> dict[str, Any] | None:
        """The recorded result of ``step`` if it was done, else None."""
        for r in self.records:
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
