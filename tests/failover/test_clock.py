"""Clock jumps: the watcher's backup schedule runs on the monotonic clock, and an RPO is never
negative (a backup dated in the future by a clock jump gives RPO 0 and says how far off it was)."""

from __future__ import annotations

import os
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


def test_after_a_clock_jump_and_its_correction_the_failover_restores_the_fresh_backup(
    guestbook, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The primary's clock jumps two hours ahead (a backup is dated then), is corrected, and a
    fresh backup follows: the failover restores the fresh one (by its sequence number; by time the
    stale one would win), and its RPO is not negative."""
    from deplat.failover.backup import service_data_dir
    from tests.support.clock import CLOCK_ENV, clock, shifted_restic

    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    monkeypatch.setenv("PATH", f"{shifted_restic(tmp_path / 'bin')}:{os.environ['PATH']}")
    marker = service_data_dir(spec, "site-a", "web") / "marker.txt"
    marker.write_text("stale")
    monkeypatch.setenv(CLOCK_ENV, clock(+7200))
    data.back_up(spec, "site-a")
    monkeypatch.delenv(CLOCK_ENV)
    marker.write_text("fresh")
    (fresh,) = data.back_up(spec, "site-a")

    result = run_failover(spec, guestbook.secrets(), to="site-b", reference_time=time.time())

    assert result.ok
    (restored,) = result.restored
    assert fresh["id"] and restored["backup_id"].startswith(fresh["id"])
    assert (service_data_dir(spec, "site-b", "web") / "marker.txt").read_text() == "fresh"
    assert result.rpo_seconds is not None and result.rpo_seconds >= 0
