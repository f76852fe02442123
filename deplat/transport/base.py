"""The command transport: how deplat runs a command on a site and puts a file there.

Callers build argument lists (pure functions, testable as exact lists) and hand them to a
``Transport``; a local site runs them directly (``DirectTransport``), a cloud site over SSH
(``SshTransport``). Secret values travel in ``env`` only: never in argv, never on the site's disk.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from deplat.errors import ErrorClass, InputError, OperationFailed

OnLine = Callable[[str], None]


@dataclass(frozen=True)
class Completed:
    """A finished command: its argv, exit status and captured output (text)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One line for messages: the command and the last line of its error output."""
        last = next((line for line in reversed(self.stderr.splitlines()) if line.strip()), "")
        return f"`{shlex.join(self.argv)}` exited {self.returncode}" + (f": {last.strip()}" if last else "")


class TransportError(OperationFailed):
    """The site could not be reached or the command could not be started (not: it ran and failed)."""

    def __init__(self, message: str, *, hint: str | None = None, error_class: ErrorClass) -> None:
        super().__init__(message, hint=hint)
        self.error_class = error_class


class CommandTimeout(TransportError):
    """The command ran longer than its deadline and was stopped."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, error_class=ErrorClass.TRANSIENT)


class HostKeyMismatch(InputError):
    """The site's SSH host key is not the one recorded for it: maybe a replaced VM, maybe an attack."""

    error_class = ErrorClass.FORBIDDEN


class KeyRefused(InputError):
    """The site refused the app's SSH key."""

    error_class = ErrorClass.FORBIDDEN


class Transport(ABC):
    """Runs commands on one site. ``where`` names it in messages (``local site a``, ``root@h:22``)."""

    where: str

    @abstractmethod
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
        """Run ``argv`` (in ``cwd``) with ``env`` added to the site's environment; wait at most
        ``timeout`` seconds (``CommandTimeout``). ``on_line`` sees each line of stdout as it comes.
        A non-zero exit is returned, not raised: callers decide what it means."""

    @abstractmethod
    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``path`` on the site atomically (a temp file renamed into place)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (a no-op for direct execution)."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, argv: Sequence[str], **kwargs: object) -> Completed:
        """``run`` that raises ``OperationFailed`` on a non-zero exit."""
        done = self.run(argv, **kwargs)  # type: ignore[arg-type]
        if not done.ok:
            raise OperationFailed(f"on {self.where}: {done.describe()}")
        return done
