"""Whole-suite hygiene: no process a test started outlives the run.

`deplat up` of a spec without DNS starts the front door as its own process (it must outlive the
command). Tests stop it through `deplat destroy`; this net ends any that a failed or interrupted test
left, found by their command line naming a folder under this run's temporary root.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

FRONT_DOOR_MODULE = "deplat.failover.frontdoor_process"


def _front_doors_under(root: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if FRONT_DOOR_MODULE in words and any(w.startswith(str(root)) for w in words):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session", autouse=True)
def no_front_door_outlives_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.getbasetemp().resolve()
    yield
    for pid in _front_doors_under(root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture(autouse=True)
def sigint_handler_restored() -> Iterator[None]:
    """deplat run in-process (the CLI's Ctrl-C guard, a supervisor's stop request) must give back
    the SIGINT handler it found: one left behind made a later `logs -f` ignore Ctrl-C and hang the
    suite. The test that leaves one fails, and the next starts with the handler as it was."""
    before = signal.getsignal(signal.SIGINT)
    yield
    left = signal.getsignal(signal.SIGINT)
    if left is not before:
        signal.signal(signal.SIGINT, before)
        pytest.fail(f"the test left its own SIGINT handler behind: {left!r}", pytrace=False)
