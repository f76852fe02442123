"""What a watcher keeps of its run: the timeline log (every event as a JSON line, owner-only,
secret values masked, ``.deplat/watch.log`` by default) and the summary ``Watcher.run`` returns."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import FilesystemError
from deplat.events import Event
from deplat.files import private_dir
from deplat.paths import paths

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

LOG_RETRY = 30.0  # seconds between attempts to write the timeline log again after a full disk


def watch_log_path(spec: Spec) -> Path:
    return paths(spec).watch_log


class TimelineLog:
    """Append-only JSON lines (owner-only), secret values masked; one line per event.

    A log that cannot be written (disk full, read-only) never stops the watcher: it stops logging,
    says so once (``degraded``), and tries again every ``LOG_RETRY`` seconds.
    """

    def __init__(self, path: Path | None, secrets: SecretStore, clock: Any = time.monotonic) -> None:
        self.path = path
        self.secrets = secrets
        self.clock = clock
        self.degraded: str | None = None  # why the log is not written now
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def write(self, event: Event) -> str | None:
        """Append ``event``; returns a message when the log just stopped working, else None."""
        if self.path is None:
            return None
        record = self.secrets.masker.data(event.to_dict())
        line = (json.dumps(record, default=str) + "\n").encode("utf-8")
        with self._lock:
            if self.degraded is not None and self.clock() < self._retry_at:
                return None
            try:
                private_dir(self.path.parent)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    size = os.fstat(fd).st_size
                    try:
                        os.write(fd, line)
                    except OSError:
                        os.ftruncate(fd, size)  # never a torn line in the middle of the log
                        raise
                finally:
                    os.close(fd)
            except (OSError, FilesystemError) as exc:
                first = self.degraded is None
                self.degraded = str(exc.message if isinstance(exc, FilesystemError) else exc.strerror or exc)
                self._retry_at = self.clock() + LOG_RETRY
                return self.degraded if first else None
            self.degraded = None
            return None


@dataclass
class WatchSummary:
    cycles: int = 0
    failovers: list[dict[str, Any]] = field(default_factory=list)
    backups: int = 0
    primary: str = ""
    stopped_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "failovers": self.failovers,
            "backups": self.backups,
            "primary": self.primary,
            "stopped_by": self.stopped_by,
        }
