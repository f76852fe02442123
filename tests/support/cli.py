"""The deplat CLI run in-process, as a user types it (global options anywhere, no colour)."""

from __future__ import annotations

from collections.abc import Callable

from deplat.cli import run
from deplat.cli.argv import hoist_globals


def cli(*args: str) -> int:
    """``deplat ARGS...`` in this process; its exit code (output goes to the captured stdout/err)."""
    return run(hoist_globals(["--no-color", *args]))


Cli = Callable[..., int]  # a ``cli`` bound to a spec: ``deplat -f SPEC ARGS...``
