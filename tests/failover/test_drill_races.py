"""A drill never gives false results because of another operation: it refuses at once, touching
nothing, when a watcher or another drill runs for the spec, or a failover is unfinished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deplat import oplock
from deplat.errors import InputError
from deplat.events import Event, EventKind
from deplat.failover.drill import run_drill
from deplat.failover.drill.outcome import DrillReport, UsersView
from deplat.failover.drill.timeline import fill

ROOT = Path(__file__).resolve().parents[2]


def holder(spec_path: Path, name: str, command: str, shared: bool) -> subprocess.Popen[str]:
    code = (
        "import time; from deplat import oplock; from deplat.spec.loader import load_spec\n"
        f"with oplock.hold(load_spec({str(spec_path)!r}), {name!r}, {command!r}, shared={shared}):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "command", "shared"),
    [("watch", "deplat watch", True), ("drill", "deplat drill --mode slow", False)],
)
def test_a_drill_refuses_at_once_while_a_watcher_or_another_drill_runs(
    guestbook, name: str, command: str, shared: bool
) -> None:
    guestbook.write()
    child = holder(guestbook.path, name, command, shared)
    try:
        start = time.monotonic()
        with pytest.raises(oplock.Busy) as info:
            run_drill(guestbook.spec, guestbook.secrets())
        assert time.monotonic() - start < 2
        assert f"{command} (pid {child.pid}" in info.value.message
    finally:
        child.kill()
        child.wait()
    assert not (guestbook.dir / ".deplat" / "local").exists()  # nothing was stood up


def test_a_drill_never_adopts_an_unfinished_failover(guestbook) -> None:
    from deplat.failover.journal import Journal

    guestbook.write()
    journal = Journal.create(guestbook.spec, {"from": "site-a", "to": "site-b", "pid": 999_999_999})
    with pytest.raises(InputError, match="is unfinished") as info:
        run_drill(guestbook.spec, guestbook.secrets())
    assert journal.id in info.value.message and "--resume" in (info.value.hint or "")
    assert not Journal.load(journal.path).finished  # left for the operator, not closed by the drill


def test_the_rto_is_never_shorter_than_the_detection() -> None:
    """Users reaching another site before this drill detected anything means someone else moved
    the traffic: the drill reports that, never an RTO."""
    t0 = 1_800_000_000.0
    report = DrillReport(ok=False, site="site-a", target=None, mode="refused", switch="front_door", url="u")
    users = UsersView(via="front door", first_healthy_at=t0 + 1.0, first_healthy_site="site-b")
    events = [
        Event(
            EventKind.WATCH_VERDICT,
            "down",
            site="site-a",
            data={"watcher": "drill", "state": "down"},
            at=t0 + 3,
        ),
        Event(EventKind.WATCH_DECISION, "go", site="site-b", data={"watcher": "drill"}, at=t0 + 3.1),
        Event(
            EventKind.FAILOVER_END,
            "done",
            site="site-b",
            data={"outcome": "already", "to_site": "site-b"},
            at=t0 + 3.2,
        ),
    ]
    fill(report, events, t0, users, "drill")
    assert report.detection_seconds == 3.0
    assert report.rto_seconds is None
    assert any("before this drill detected it" in p for p in report.problems)


def test_another_watchers_failover_does_not_count_as_the_drills() -> None:
    t0 = 1_800_000_000.0
    report = DrillReport(ok=False, site="site-a", target=None, mode="refused", switch="front_door", url="u")
    users = UsersView(via="front door", first_healthy_at=t0 + 4.0, first_healthy_site="site-b")
    events = [
        Event(
            EventKind.WATCH_VERDICT,
            "down",
            site="site-a",
            data={"watcher": "watch", "state": "down"},
            at=t0 + 3,
        ),
        Event(EventKind.WATCH_DECISION, "go", site="site-b", data={"watcher": "watch"}, at=t0 + 3.1),
        Event(
            EventKind.FAILOVER_END,
            "done",
            site="site-b",
            data={"outcome": "done", "to_site": "site-b"},
            at=t0 + 3.2,
        ),
    ]
    fill(report, events, t0, users, "drill")
    assert report.rto_seconds is None and report.detection_seconds is None
    assert "no failover finished" in report.problems


@pytest.mark.slow
def test_a_watcher_refuses_to_start_while_a_drill_runs(guestbook) -> None:
    guestbook.write()
    with oplock.hold(guestbook.spec, "watch", "deplat drill"):
        proc = subprocess.run(
            [sys.executable, "-m", "deplat", "watch", "-f", str(guestbook.path), "--for", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"deplat drill (pid {os.getpid()}" in proc.stderr


def test_a_drill_without_a_health_check_to_measure_is_refused_before_anything(guestbook) -> None:
    import yaml

    from tests.failover.conftest import guestbook_doc

    doc = guestbook_doc(guestbook.net, guestbook.port)
    del doc["services"]["web"]["health"]
    guestbook.path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(InputError, match="health check"):
        run_drill(guestbook.spec, guestbook.secrets())
    assert not (guestbook.dir / ".deplat" / "local").exists()


@pytest.mark.slow
def test_while_a_drill_runs_a_failover_up_and_another_drill_from_other_processes_are_refused_at_once(
    guestbook,
) -> None:
    """The drill holds the spec's operation lock for its whole run (not only at its start), and
    lends it to its own watcher and failovers: they do not deadlock on it, the drill passes."""
    guestbook.write()
    env = {k: v for k, v in os.environ.items() if k != "DEPLAT_FRONT_DOOR"} | guestbook.env
    deplat = [sys.executable, "-m", "deplat", "-f", str(guestbook.path)]
    drill = subprocess.Popen(
        [*deplat, "--json", "drill"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        held = None
        while time.monotonic() < deadline and drill.poll() is None:
            held = oplock.taken(guestbook.spec, "operation")
            if held:
                break
            time.sleep(0.1)
        assert held and held[0].pid == drill.pid and held[0].command.startswith("deplat")
        time.sleep(3)  # well into the drill: sites up, its watcher running
        for argv in (["failover", "--to", "site-b", "--yes"], ["up", "--yes"], ["drill"]):
            start = time.monotonic()
            other = subprocess.run(
                [*deplat, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
            )
            took = time.monotonic() - start
            assert other.returncode == 2, (argv, other.stdout, other.stderr)
            assert f"(pid {drill.pid}" in other.stderr and "deplat" in other.stderr, (argv, other.stderr)
            assert took < 10, (argv, took)  # at once: the time to start python, never a wait
        assert drill.poll() is None  # the refusals did not disturb it
        out, err = drill.communicate(timeout=240)
    finally:
        if drill.poll() is None:
            drill.kill()
            drill.wait()
    assert drill.returncode == 0, err[-3000:]
    report = json.loads(out)
    assert report["ok"] and report["target"] == "site-b" and report["rto_seconds"] > 0
    assert oplock.taken(guestbook.spec, "operation") is None  # released with the drill
