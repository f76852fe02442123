"""Ctrl-C while sites change: the first cancels and says so, the second stops at once.

The first SIGINT asks every site to stop where it can (``deplat.cancel``; the ``pulumi`` CLI gets a
SIGINT of its own and cancels its update cleanly) and the command then exits 130. At a terminal the
``pulumi`` processes already got the terminal's SIGINT (same process group), so they are not sent a
second one (which would make them stop without cleaning up); off a terminal (``kill -INT``, CI) they
get it from here. A second SIGINT raises ``KeyboardInterrupt``: the CLI exits 130 without waiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deplat import cancel

CANCELING = "canceling: every site stops where it can (Ctrl-C again to stop at once)"


def _from_terminal() -> bool:
    """Did a terminal's Ctrl-C (sent to our whole foreground process group) bring the signal?"""
    try:
        return os.isatty(sys.stdin.fileno()) and os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in task.read_text().split()]
    return found


def _forward_to_pulumi() -> None:
    for child in _children(os.getpid()):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("pulumi"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGINT)


@contextlib.contextmanager
def guard(say: Callable[[str], None]) -> Iterator[threading.Event]:
    """Within: the first SIGINT cancels (``say`` tells the person), the second raises."""
    interrupted = threading.Event()
    cancel.reset()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        interrupted.set()
        cancel.request()
        if not _from_terminal():
            _forward_to_pulumi()
        say(CANCELING)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
