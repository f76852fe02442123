"""Clock jumps: the watcher's backup schedule runs on the monotonic clock, and an RPO is never
negative (a backup dated in the future by a clock jump gives RPO 0 and says how far off it was)."""

from __future__ import annotations

import threading
import time

import pytest

from deplat.events import EventKind, Recorder
from deplat.failover import data
from deplat.failover.run import run_failover
from deplat.failover.watch import Watcher

pytestmark = pytest.mark.slow


def test_a_wall_clock_step_back_does_not_pause_the_watchers_backups(
    guestbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    guestbook.write(interval=0.1, backups=0.3)
    guestbook.up("site-a", "site-b")
    real = time.time
    offset = {"seconds": 0.0}
    monkeypatch.setattr(time, "time", lambda: real() + offset["seconds"])
    events = Recorder()
    watcher = Watcher(guestbook.spec, guestbook.secrets(), emit=events, log_path=None, keep_front_door=False)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not events.of(EventKind.WATCH_BACKUP) and time.monotonic() < deadline:
            time.sleep(0.05)
        offset["seconds"] = -3600.0  # the wall clock steps back an hour
        first = len(events.of(EventKind.WATCH_BACKUP))
        deadline = time.monotonic() + 6
        while len(events.of(EventKind.WATCH_BACKUP)) < first + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop("test")
        thread.join(timeout=30)
    assert first >= 1
    assert len(events.of(EventKind.WATCH_BACKUP)) >= first + 3


def test_a_backup_dated_after_the_loss_gives_rpo_zero_never_negative(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    (backup,) = data.back_up(spec, "site-a")
    lost_at = backup["taken_at"] - 7200  # a clock jump dated the backup two hours after the loss

    result = run_failover(spec, guestbook.secrets(), to="site-b", reference_time=lost_at)  # unplanned

    assert result.ok and not result.planned and result.rpo_seconds == 0.0
    (restored,) = result.restored
    assert restored["backup_id"] and restored["rpo_seconds"] == 0.0
