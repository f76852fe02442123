"""The watcher: fails over by itself, but never flaps, never to an unhealthy site, never too often;
two watchers make one failover; SIGTERM stops it cleanly; a suspended site's provider is left alone."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deplat.events import Recorder
from deplat.failover import control_plane, probe
from deplat.failover.faults import FaultInjector
from deplat.failover.watch import Watcher, watch_log_path
from deplat.sites import driver_for
from deplat.state import Active, load_active, save_active

pytestmark = pytest.mark.slow


def run_watcher(watcher: Watcher, until: Any, timeout: float) -> None:
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until():
            time.sleep(0.05)
    finally:
        watcher.stop("test")
        thread.join(timeout=30)
    assert not thread.is_alive()


def failovers(events: Recorder) -> list[dict[str, Any]]:
    return [e.data for e in events.events if e.kind == "failover.end"]


def test_no_failover_when_probes_fail_at_random_ten_percent(
    guestbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    guestbook.write(interval=0.05, timeout=0.5, failures=4)
    guestbook.up("site-a", "site-b")
    real = probe.probe_site
    rng = random.Random(20261124)
    injected: list[str] = []

    async def flaky(spec, site, addresses, **kwargs):
        result = await real(spec, site, addresses, **kwargs)
        if rng.random() < 0.10:
            injected.append(result.site)
            result.health = probe.Health.down
        return result

    monkeypatch.setattr(probe, "probe_site", flaky)
    events = Recorder()
    watcher = Watcher(guestbook.spec, guestbook.secrets(), emit=events)
    summary = watcher.run(max_cycles=120)

    assert summary.cycles == 120
    assert len(injected) >= 10  # failures really were injected, at about 10%
    assert failovers(events) == []
    assert not [e for e in events.events if e.kind == "watch.verdict" and e.data["state"] != "up"]
    assert load_active(guestbook.spec).primary == "site-a"


def test_watch_fails_over_when_the_primary_is_suspended_and_never_calls_its_provider_again(
    guestbook, recording_driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    factory, driver_calls = recording_driver(lambda site: driver_for(spec, site, secrets), {"site-a"})
    plane_calls: list[tuple[str, float]] = []
    real_check = control_plane.check

    def recording_check(spec_, site, secrets_, timeout):
        plane_calls.append((site.name if hasattr(site, "name") else site, time.time()))
        return real_check(spec_, site, secrets_, timeout)

    monkeypatch.setattr(control_plane, "check", recording_check)
    events = Recorder()
    watcher = Watcher(spec, secrets, emit=events, drivers=factory)
    fault = FaultInjector(spec, "site-a", secrets, restart_on_clear=False)

    def suspend_once_up() -> bool:
        if fault.mode is None and any(
            e.kind == "watch.verdict" and e.site == "site-a" for e in events.events
        ):
            fault.apply("suspended")
        return bool(failovers(events))

    with fault:
        run_watcher(watcher, suspend_once_up, 30)

    ends = failovers(events)
    assert [e["outcome"] for e in ends] == ["done"]
    assert ends[0]["from_site"] == "site-a" and ends[0]["to_site"] == "site-b"
    suspended_at = next(
        e.at
        for e in events.events
        if e.kind == "watch.verdict" and e.site == "site-a" and e.data["state"] == "suspended"
    )
    assert [c for c in plane_calls if c[0] == "site-a" and c[1] > suspended_at] == []
    assert driver_calls == []
    log = [json.loads(line) for line in watch_log_path(spec).read_text().splitlines()]
    kinds = [r["kind"] for r in log]
    assert "watch.verdict" in kinds and "watch.decision" in kinds and "failover.end" in kinds


def test_watch_never_fails_over_to_an_unhealthy_standby(guestbook) -> None:
    guestbook.write(roles=("primary", "warm"))
    guestbook.up("site-a")  # the only standby never runs
    spec, secrets = guestbook.spec, guestbook.secrets()
    events = Recorder()
    with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
        fault.apply("refused")
        Watcher(spec, secrets, emit=events).run(max_cycles=12)
    assert failovers(events) == []
    assert any(e.kind == "watch.hold" and "no standby is healthy" in e.message for e in events.events)
    assert load_active(spec).primary == "site-a"


def test_watch_respects_the_minimum_interval_between_failovers(guestbook) -> None:
    guestbook.write(min_interval=3600)
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    save_active(spec, Active(primary="site-a", last_failover_at=time.time() - 10))
    events = Recorder()
    with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
        fault.apply("suspended")
        Watcher(spec, secrets, emit=events).run(max_cycles=12)
    assert failovers(events) == []
    assert any(e.kind == "watch.hold" and "min_interval" in e.message for e in events.events)


def _watch_process(guestbook, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deplat", "-f", str(guestbook.path), "--json", "watch", "--for", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **guestbook.env},
    )


def test_two_watchers_make_exactly_one_failover(guestbook, bind_factory) -> None:
    ns = bind_factory(records={n: [f"{guestbook.net}.11"] for n in ("guestbook.test", "www.guestbook.test")})
    guestbook.env = ns.secret_env()
    guestbook.write(dns=[ns.dns_entry("ns-a")], interval=0.2)
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    watchers = [_watch_process(guestbook, 9), _watch_process(guestbook, 9)]
    try:
        time.sleep(2.5)  # both start (imports) and see every site up
        with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
            fault.apply("suspended")
            outputs = [w.communicate(timeout=60) for w in watchers]
    finally:
        for w in watchers:
            if w.poll() is None:
                w.kill()
                w.wait()
    lines = [json.loads(line) for out, _ in outputs for line in out.splitlines() if line.startswith("{")]
    switches = [
        r
        for r in lines
        if r["kind"] == "failover.step" and r.get("step") == "switch" and r.get("status") == "done"
    ]
    assert [w.returncode for w in watchers] == [0, 0], [err for _, err in outputs]
    assert [r["outcome"] for r in switches].count("switched") == 1
    assert set(r["outcome"] for r in switches) <= {"switched", "already"}  # the other one adopted it
    for name in spec.domain.names:
        assert ns.query(name, "A") == [guestbook.address("site-b")]
    active = load_active(spec)
    assert active.primary == "site-b" and len(active.history) == 1


def test_watch_stops_cleanly_on_sigterm(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    proc = _watch_process(guestbook, 60)
    try:
        deadline = time.monotonic() + 20
        log = watch_log_path(guestbook.spec)
        while time.monotonic() < deadline and not (log.exists() and "watch.verdict" in log.read_text()):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records[-1]["kind"] == "watch.stop" and "SIGTERM" in records[-1]["message"]
    assert "Traceback" not in err
    assert Path(log).read_text().strip().splitlines()[-1].find("watch.stop") > 0


def test_watch_falls_back_to_a_cold_standby_and_stands_it_up(guestbook) -> None:
    guestbook.write(roles=("primary", "cold"))
    guestbook.up("site-a")
    spec, secrets = guestbook.spec, guestbook.secrets()
    events = Recorder()
    watcher = Watcher(spec, secrets, emit=events)
    fault = FaultInjector(spec, "site-a", secrets, restart_on_clear=False)

    def refuse_once_up() -> bool:
        if fault.mode is None and any(e.kind == "watch.verdict" for e in events.events):
            fault.apply("refused")
        return bool(failovers(events))

    with fault:
        run_watcher(watcher, refuse_once_up, 30)
    (end,) = failovers(events)
    assert end["outcome"] == "done" and end["to_site"] == "site-b"
    ensure = next(s for s in end["steps"] if s["step"] == "ensure_target")
    assert ensure["result"]["stood_up"] is True
    assert load_active(spec).primary == "site-b"


def test_watch_resumes_a_failover_whose_process_was_killed(guestbook) -> None:
    from deplat.failover.journal import Journal

    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crash_failover",
            str(guestbook.path),
            "switch",
            "--to",
            "site-b",
        ],
        env={**os.environ},
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == 137
    events = Recorder()
    with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
        fault.apply("refused")
        watcher = Watcher(spec, secrets, emit=events)
        run_watcher(watcher, lambda: bool(failovers(events)), 20)
    assert any(e.kind == "watch.resume" for e in events.events)
    (journal,) = Journal.all(spec)  # the killed one, finished: no second failover was started
    assert journal.outcome == "done" and journal.attempts("switch") == 1
    assert load_active(spec).primary == "site-b"
