"""A local service's log file: its output masked, in whole lines, rotated at 10 MiB (one old file
kept); on a full or read-only disk it stops writing, says why, and tries again later (the service
runs on). Used by the supervisor (``deplat.local.supervisor``)."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from deplat.secrets import Masker

MAX_LOG_BYTES = 10 * 1024 * 1024
# A disk that cannot take more: logging stops (and says so in the state), the services run on.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
LOG_RETRY = 30.0  # seconds before a stopped log tries the disk again


class LogSink:
    """A service's log file: masked whole lines, rotated when it grows too big. When the disk is
    full (or read-only) it stops writing, keeps draining the service's output, records why in
    ``stopped`` and tries again every ``LOG_RETRY`` seconds: a full disk never stops the app."""

    def __init__(self, path: Path, masker: Masker) -> None:
        self.path = path
        self.masker = masker
        self.partial = b""
        self.stopped: str | None = None
        self.retry_at = 0.0
        self.file: IO[bytes] | None = None
        self._guard(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.file = self.path.open("ab")

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self.stopped = f"logging stopped: {exc.strerror} ({self.path})"
            self.retry_at = time.monotonic() + LOG_RETRY
            if self.file is not None:
                with contextlib.suppress(OSError):
                    self.file.close()
            self.file = None

    def feed(self, data: bytes) -> None:
        data = self.partial + data
        lines, _, self.partial = data.rpartition(b"\n")
        if lines:
            self._write(lines + b"\n")
        if len(self.partial) > 64 * 1024:  # a very long line without an end: write what we have
            self._write(self.partial + b"\n")
            self.partial = b""

    def flush_partial(self) -> None:
        if self.partial:
            self._write(self.partial + b"\n")
            self.partial = b""

    def note(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._write(f"[deplat {stamp}] {text}\n".encode())

    def _write(self, data: bytes) -> None:
        if self.stopped is not None:
            if time.monotonic() < self.retry_at:
                return  # dropped: the disk was full a moment ago
            stopped, self.stopped = self.stopped, None
            self._guard(self._open)
            if self.stopped is None:
                data = f"[deplat] {stopped}; logging again\n".encode() + data
        self._guard(lambda: self._append(data))

    def _append(self, data: bytes) -> None:
        if self.file is None:
            return
        text = data.decode("utf-8", "surrogateescape")
        self.file.write(self.masker.text(text).encode("utf-8", "surrogateescape"))
        self.file.flush()
        if self.file.tell() > MAX_LOG_BYTES:
            self.file.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.file = self.path.open("ab")

    def close(self) -> None:
        self.flush_partial()
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
