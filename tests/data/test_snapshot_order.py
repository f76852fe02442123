"""Which snapshot is newest is decided by its sequence number, not by the clock of the host that took
it: after a clock jump (+2 h, then corrected) the STALE snapshot dated in the future never wins, not
for a restore, not across repositories, not across sites, and retention never drops the fresh ones.
Real restic; a clock jump is restic's own ``--time`` (tests/support/clock.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deplat.data import repositories as repos
from deplat.data.restic import Repository, Restic, newest_per_service, order, parse_snapshots
from deplat.failover.backup import ResticBackupStore
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.support.clock import CLOCK_ENV, clock, shifted_restic
from tests.support.trees import read_files, write_files

pytestmark = pytest.mark.slow


@pytest.fixture
def jumpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """restic on PATH whose backups are dated by ``DEPLAT_TEST_CLOCK`` when it is set."""
    folder = shifted_restic(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(CLOCK_ENV, raising=False)


def back_up(restic: Restic, folder: Path, text: str, site: str = "site-a", **kw: object) -> None:
    write_files(folder, {"n.txt": text})
    restic.backup(str(folder), site=site, app="shop", service="web", **kw)  # type: ignore[arg-type]


def restored(restic: Restic, snapshot: str, target: Path) -> str:
    restic.restore(snapshot, str(target))
    return read_files(target)["n.txt"]


def test_after_a_clock_jump_and_its_correction_the_fresh_snapshot_wins_and_is_kept(
    jumpy: None,
    local_repo: Repository,
    here: DirectTransport,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restic = Restic(local_repo, PASSWORD, here)
    restic.init()
    data = tmp_path / "data"
    back_up(restic, data, "v1")
    monkeypatch.setenv(CLOCK_ENV, clock(+7200))  # the clock jumps two hours ahead
    back_up(restic, data, "v2 stale")
    monkeypatch.delenv(CLOCK_ENV)  # and is corrected
    back_up(restic, data, "v3 fresh")

    found = restic.snapshots(app="shop", service="web")
    assert [s.seq for s in found] == [1, 2, 3]
    assert max(found, key=lambda s: s.time).seq == 2  # by time, the stale one would win
    latest = restic.latest(app="shop", service="web")
    assert latest is not None and restored(restic, latest.id, tmp_path / "r1") == "v3 fresh"
    assert newest_per_service(found)["web"].id == latest.id
    states = repos.survey([local_repo], PASSWORD, here, app="shop")
    newest = repos.newest(states, "web")
    assert newest is not None and newest.id == latest.id

    # retention keeps the newest by sequence (restic's --keep-last would keep the future-dated one)
    back_up(restic, data, "v4 fresher")
    assert restic.forget(app="shop", keep=2) == 2
    left = restic.snapshots(app="shop", service="web")
    assert [s.seq for s in left] == [3, 4]
    assert restored(restic, left[-1].id, tmp_path / "r2") == "v4 fresher"


def test_a_site_promoted_later_wins_over_the_old_primarys_future_dated_snapshots_in_every_repository(
    jumpy: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Repository(name="one", url=str(tmp_path / "one"), held_by="local", deadline=30)
    second = Repository(name="two", url=str(tmp_path / "two"), held_by="local", deadline=30)
    store = ResticBackupStore([first, second], PASSWORD, "shop", tmp_path)
    old, new = tmp_path / "site-a" / "web", tmp_path / "site-b" / "web"
    write_files(old, {"n.txt": "old primary, good clock"})
    store.put("site-a", "web", old)
    monkeypatch.setenv(CLOCK_ENV, clock(+7200))  # the old primary's clock runs two hours ahead
    write_files(old, {"n.txt": "old primary, clock ahead"})
    store.put("site-a", "web", old)
    monkeypatch.delenv(CLOCK_ENV)
    # the old primary is lost; site-b, promoted and restored, takes its own first backup
    write_files(new, {"n.txt": "promoted site"})
    taken = store.put("site-b", "web", new)

    latest = store.latest("web")
    assert latest is not None and latest.site == "site-b" and latest.id.startswith(taken.id)
    target = tmp_path / "restored"
    store.fetch(latest, target)
    assert read_files(target) == {"n.txt": "promoted site"}
    for repo in (first, second):  # the same sequence in every repository
        seqs = {
            s.site: s.seq for s in Restic(repo, PASSWORD, DirectTransport(tmp_path)).snapshots(app="shop")
        }
        assert seqs == {"site-a": 2, "site-b": 3}


def test_a_repository_that_missed_backups_continues_the_sequence_of_the_others(
    tmp_path: Path,
) -> None:
    """The sequence is computed across every repository that answers: one that was away for a
    while never makes an older snapshot look newer than a fresh one elsewhere."""
    here = DirectTransport(tmp_path)
    up = Repository(name="up", url=str(tmp_path / "up"), held_by="local", deadline=30)
    away = Repository(name="away", url=str(tmp_path / "away"), held_by="local", deadline=30)
    data = tmp_path / "web"
    for text in ("v1", "v2", "v3"):
        write_files(data, {"n.txt": text})
        ResticBackupStore([up], PASSWORD, "shop", tmp_path).put("site-a", "web", data)
    write_files(data, {"n.txt": "v4"})
    ResticBackupStore([up, away], PASSWORD, "shop", tmp_path).put("site-a", "web", data)
    (snap,) = Restic(away, PASSWORD, here).snapshots(app="shop")
    assert snap.seq == 4


def test_snapshots_without_a_sequence_come_before_those_with_one_then_time_then_id() -> None:
    text = (
        '[{"time":"2030-01-01T00:00:00Z","hostname":"a","tags":["app=x","service=web"],"id":"old-deplat"},'
        '{"time":"2026-01-01T00:00:02Z","hostname":"a","tags":["app=x","service=web","seq=2"],"id":"b"},'
        '{"time":"2026-01-01T00:00:01Z","hostname":"b","tags":["app=x","service=web","seq=2"],"id":"c"},'
        '{"time":"2026-01-01T00:00:00Z","hostname":"a","tags":["app=x","service=web","seq=10"],"id":"d"},'
        '{"time":"2028-01-01T00:00:00Z","hostname":"a","tags":["app=x","service=web","seq=9"],"id":"e"}]'
    )
    snaps = parse_snapshots(text)
    assert [s.id for s in snaps] == ["old-deplat", "c", "b", "e", "d"]
    assert [s.seq for s in snaps] == [None, 2, 2, 9, 10]
    assert max(snaps, key=order).id == "d"
