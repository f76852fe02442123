"""The errors deplat's core raises, each mapped by the CLI to one message and an exit code.

- ``InputError`` (exit 2): the user can fix it: bad spec, missing credentials, missing CLI.
- ``OperationFailed`` (exit 1): the input was fine but the operation did not succeed.
Anything else is a bug: the CLI says so in one line and shows the traceback only with --verbose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorClass(StrEnum):
    """What kind of failure something is, in one vocabulary shared by the engine, DNS providers,
    probes, hosting providers and the CLI. It decides what deplat does next (fail over, retry, stop)
    and which hint the user sees (``words`` and ``hint``; ``--json`` shows the value)."""

    SUSPENDED = "suspended"  # the provider refuses the account: fail over, never retry
    FORBIDDEN = "forbidden"  # credentials refused or lacking a permission: the user fixes them
    CREDENTIALS = "credentials"  # no credentials for the provider at all (checked before a run)
    TRANSIENT = "transient"  # try again: timeouts, 5xx, rate limits
    CAPACITY = "capacity"  # the provider has no room there now: try another location or size
    LOCKED = "locked"  # the site's state is locked by another run (live, or gone and stale)
    CANCELED = "canceled"  # the run was canceled (Ctrl-C, a deadline): a rerun continues
    PASSPHRASE = "passphrase"  # the state passphrase is missing or wrong
    PLUGIN = "plugin"  # the engine's provider plugin is missing and could not be installed
    FILESYSTEM = "filesystem"  # a local disk is full, read-only or holds a corrupt file
    INPUT = "input"  # the spec, a flag or a secret is wrong
    FATAL = "fatal"  # anything else: read the message

    @classmethod
    def of(cls, value: str | ErrorClass | None, default: ErrorClass | None = None) -> ErrorClass | None:
        """``value`` as an ErrorClass; ``default`` for None or an unknown word."""
        if value is None:
            return default
        try:
            return cls(value)
        except ValueError:
            return default

    @property
    def words(self) -> str:
        """The class as a person reads it."""
        return _WORDS[self]

    @property
    def hint(self) -> str | None:
        """What the user can do about a failure of this class in general, if anything."""
        return _HINTS.get(self)


_WORDS: dict[ErrorClass, str] = {
    ErrorClass.SUSPENDED: "account suspended or forbidden",
    ErrorClass.FORBIDDEN: "account suspended or forbidden",
    ErrorClass.CREDENTIALS: "credentials missing or refused",
    ErrorClass.TRANSIENT: "transient",
    ErrorClass.CAPACITY: "no capacity there",
    ErrorClass.LOCKED: "locked by another run",
    ErrorClass.CANCELED: "canceled",
    ErrorClass.PASSPHRASE: "wrong passphrase",
    ErrorClass.PLUGIN: "provider plugin missing",
    ErrorClass.FILESYSTEM: "local file system",
    ErrorClass.INPUT: "bad input",
    ErrorClass.FATAL: "fatal",
}

_HINTS: dict[ErrorClass, str] = {
    ErrorClass.SUSPENDED: "the provider refuses this account: fail over with `deplat failover`",
    ErrorClass.FORBIDDEN: "the provider refuses this account: fail over with `deplat failover`",
    ErrorClass.CREDENTIALS: "see `deplat doctor`; credentials come from the provider's usual sources or "
    "the spec",
    ErrorClass.TRANSIENT: "retry later; the provider reported a temporary error",
    ErrorClass.CAPACITY: "try another location or machine size, or retry later",
    ErrorClass.LOCKED: "if no other deplat run is active, `deplat up --clear-locks` removes a stale lock",
    ErrorClass.CANCELED: "run the command again: what was already changed stays, the rerun continues",
    ErrorClass.PASSPHRASE: "set DEPLAT_PASSPHRASE (or the spec's state.passphrase) to the passphrase the "
    "state was created with",
    ErrorClass.PLUGIN: "run `deplat doctor`; offline, pre-install it: "
    "pulumi plugin install resource NAME VERSION --file X",
    ErrorClass.FILESYSTEM: "a local disk is full or read-only, or a file is not yours: fix it (the message "
    "names the path) and rerun",
}


class DeplatError(Exception):
    """Base of every error deplat reports to the user as a message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(DeplatError):
    """Bad input or usage: the message says what to fix."""

    exit_code = 2


class OperationFailed(DeplatError):
    """The operation ran and failed."""

    exit_code = 1


class FilesystemError(InputError):
    """A local file system problem (full, read-only, permissions, a corrupt state file): not a
    provider's fault and not a bug. The message names the path, the hint the fix."""

    error_class = ErrorClass.FILESYSTEM


@dataclass(frozen=True)
class Problem:
    """One problem in a spec file, located by file, line, column and a path inside the spec."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SpecError(InputError):
    """A spec with one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        count = len(self.problems)
        first = self.problems[0].file if self.problems else "spec"
        super().__init__(f"{first}: {count} problem{'s' if count != 1 else ''}")
