"""The watcher under faults: a lost probe is asked again within its cycle before it counts (no false
failover); a full disk never kills it (it says so once, keeps watching, and fails over once the disk
has room); after a crash between switch and fence it finishes that failover first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deplat.events import EventKind, Recorder
from deplat.failover import probe
from deplat.failover.backup import backup_site, make_store
from deplat.failover.faults import FaultInjector
from deplat.failover.journal import Journal
from deplat.failover.watch import Watcher
from deplat.state import load_active

pytestmark = pytest.mark.slow


def test_a_probe_lost_once_per_cycle_is_retried_and_never_causes_a_failover(
    guestbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    guestbook.write(interval=0.1, failures=3)
    guestbook.up("site-a", "site-b")
    real = probe.probe_site
    first_of_cycle = {"site-a": True}
    lost: list[float] = []

    async def lossy(spec, site, addresses, **kwargs):
        result = await real(spec, site, addresses, **kwargs)
        if result.site == "site-a" and first_of_cycle["site-a"]:
            first_of_cycle["site-a"] = False
            lost.append(result.at)
            result.health = probe.Health.down  # the packet was lost
        return result

    monkeypatch.setattr(probe, "probe_site", lossy)
    events = Recorder()
    watcher = Watcher(guestbook.spec, guestbook.secrets(), emit=events, log_path=None, keep_front_door=False)
    real_cycle = watcher.cycle

    def cycle():
        first_of_cycle["site-a"] = True
        return real_cycle()

    monkeypatch.setattr(watcher, "cycle", cycle)
    watcher.run(max_cycles=8)
    assert len(lost) == 8  # every cycle lost its first probe of the primary
    assert not events.of(EventKind.FAILOVER_BEGIN) and load_active(guestbook.spec).primary == "site-a"
    assert watcher.last_probe["site-a"].attempts == 2 and watcher.verdicts["site-a"].state == "up"


def test_watch_resumes_a_failover_killed_between_switch_and_fence_before_backing_up(guestbook) -> None:
    guestbook.write(interval=0.1, backups=0.1)
    guestbook.up("site-a", "site-b")
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crash_failover",
            str(guestbook.path),
            "verify",
            "--to",
            "site-b",
        ],
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == 137
    events = Recorder()
    # the old primary is healthy: nothing would trigger a failover; the orphaned one is finished
    Watcher(guestbook.spec, guestbook.secrets(), emit=events, log_path=None, keep_front_door=False).run(
        max_cycles=2
    )
    kinds = [e.kind for e in events.events]
    assert EventKind.WATCH_RESUME in kinds
    assert kinds.index(EventKind.WATCH_RESUME) < kinds.index(EventKind.FAILOVER_END)
    backups = events.of(EventKind.WATCH_BACKUP)
    assert all(b.site == "site-b" for b in backups)  # never the old, idle site
    (journal,) = Journal.all(guestbook.spec)
    assert journal.outcome == "done" and journal.attempts("switch") == 1
    assert load_active(guestbook.spec).primary == "site-b"


UNSHARE = shutil.which("unshare")


@pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0, reason="needs unshare and root for a tmpfs")
def test_a_full_disk_never_kills_the_watcher_and_it_fails_over_once_the_disk_frees(guestbook) -> None:
    guestbook.write(interval=0.2, backups=3600)
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    backup_site(spec, "site-a", make_store(spec))
    full = guestbook.dir / "full"  # the watch log's disk
    journals = guestbook.dir / ".deplat" / "journal"  # the journal's disk
    full.mkdir()
    journals.mkdir(parents=True, exist_ok=True)
    script = f"""
mount -t tmpfs -o size=64k,mode=0700 tmpfs {full} && mount -t tmpfs -o size=64k,mode=0700 tmpfs {journals} || exit 99
dd if=/dev/zero of={full}/fill bs=4k count=64 2>/dev/null
dd if=/dev/zero of={journals}/fill bs=4k count=64 2>/dev/null
exec {sys.executable} -m deplat -f {guestbook.path} --json watch --for 60 --log {full}/watch.log
"""
    proc = subprocess.Popen(
        [str(UNSHARE), "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict] = []

    def read_until(predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                return False
            if line.startswith("{"):
                lines.append(json.loads(line))
                if predicate(lines[-1]):
                    return True
        return False

    try:
        with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
            assert read_until(lambda r: r["kind"] == "watch.start", 30)
            fault.apply("refused")
            assert read_until(lambda r: r["kind"] == "watch.failover_failed", 30)
            assert proc.poll() is None  # alive, and it said why
            root = Path(f"/proc/{proc.pid}/root")
            (root / str(journals).lstrip("/") / "fill").unlink()  # the disk frees
            (root / str(full).lstrip("/") / "fill").unlink()
            assert read_until(lambda r: r["kind"] == "failover.end", 40)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    text = json.dumps(lines) + out + err
    assert "internal error" not in text and "Traceback" not in text
    degraded = [r for r in lines if r["kind"] == "watch.error"]
    assert any("log" in r["message"] for r in degraded)  # said once that it stopped logging
    failed = [r for r in lines if r["kind"] == "watch.failover_failed"]
    assert "no space left" in failed[0]["message"]
    end = [r for r in lines if r["kind"] == "failover.end"][-1]
    assert end["outcome"] == "done" and load_active(spec).primary == "site-b"
