"""Ctrl-C during ``deplat up`` of real local sites: the first cancels and says so, the second stops
at once; exit 130 either way. Signals go to a real ``deplat`` process (off a terminal, as
``kill -INT`` or CI does); the services never pass their health check, so ``up`` is still waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_sites import Guestbook

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def never_healthy(data: dict[str, Any]) -> None:
    data["services"]["web"]["health"]["path"] = "/no-such-page"


def start_up(book: Guestbook) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deplat", "--no-color", "-f", str(book.spec_path), "up", "--yes"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "waiting for health checks" in line:
            return proc
        assert time.monotonic() < deadline
    raise AssertionError(f"up never waited for health checks: {proc.stderr.read() if proc.stderr else ''}")


def test_first_ctrl_c_cancels_says_so_and_exits_130(make_guestbook: Callable[..., Guestbook]) -> None:
    book = make_guestbook(sites=1, edit=never_healthy)
    proc = start_up(book)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.monotonic() - sent < 10  # not the 15 s health timeout
    assert "canceling: every site stops where it can" in err
    assert "canceled by Ctrl-C: run `deplat up` again to finish" in err
    assert "canceled" in out and "Traceback" not in out + err


def test_second_ctrl_c_stops_at_once(make_guestbook: Callable[..., Guestbook]) -> None:
    book = make_guestbook(sites=1, edit=never_healthy)
    proc = start_up(book)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.monotonic() - sent < 5
    assert "Traceback" not in err
