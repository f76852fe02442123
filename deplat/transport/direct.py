"""Direct execution: a local site's commands run as child processes of deplat, in its folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from deplat.errors import ErrorClass
from deplat.files import write_bytes_atomic
from deplat.transport.base import CommandTimeout, Completed, OnLine, Transport, TransportError


class DirectTransport(Transport):
    """Runs commands on this machine. Relative ``cwd`` and ``put`` paths are relative to ``root``
    (the local site's folder)."""

    def __init__(self, root: Path, *, name: str = "") -> None:
        self.root = Path(root)
        self.where = f"local site {name}" if name else str(self.root)

    def _path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_line: OnLine | None = None,
    ) -> Completed:
        argv = tuple(argv)
        workdir = self._path(cwd) if cwd else self.root
        try:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env={**os.environ, **(env or {})},
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a timeout stops the command and all it started
            )
        except FileNotFoundError as exc:
            missing = exc.filename if exc.filename != str(workdir) else workdir
            raise TransportError(
                f"on {self.where}: cannot run {argv[0]}: {missing} not found",
                hint=f"install {argv[0]}" if missing != workdir else None,
                error_class=ErrorClass.INPUT,
            ) from None
        out: list[str] = []
        err: list[bytes] = []

        def read_out() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                out.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))

        def read_err() -> None:
            assert proc.stderr is not None
            err.append(proc.stderr.read())

        readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
        for t in readers:
            t.start()
        if stdin is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin)
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise CommandTimeout(f"on {self.where}: {argv[0]} did not finish within {timeout:g}s") from None
        finally:
            for t in readers:
                t.join(5)
        return Completed(argv, proc.returncode, "".join(out), b"".join(err).decode("utf-8", "replace"))

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, data, mode=mode)
