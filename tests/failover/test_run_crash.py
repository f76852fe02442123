"""``kill -9`` of the failover at each step, then ``deplat failover --resume``: DNS (a real BIND) ends on
exactly one healthy site and no side effect is repeated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from deplat.failover.journal import Journal
from deplat.failover.run import STEPS
from deplat.state import load_active

pytestmark = pytest.mark.slow

POINTS = [*STEPS, "switch:start", "restore:start"]


def deplat(guestbook, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI; with ``crash``, the test entry point that dies (as if killed) at that point."""
    env = {**os.environ, **guestbook.env}
    command = ["-m", "deplat", "-f", str(guestbook.path), *args]
    if crash:
        command = ["-m", "tests.support.crash_failover", str(guestbook.path), crash, *args]
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_step_then_resume_finishes_once(guestbook, bind_factory, point: str) -> None:
    ns = bind_factory(records={n: [f"{guestbook.net}.11"] for n in ("guestbook.test", "www.guestbook.test")})
    guestbook.env = ns.secret_env()
    guestbook.write(dns=[ns.dns_entry("ns-a")])
    guestbook.up("site-a", "site-b")
    httpx.post(guestbook.url("site-a", "/entries"), json={"message": "before"}, trust_env=False)
    from deplat.failover.backup import backup_site, make_store

    backup_site(guestbook.spec, "site-a", make_store(guestbook.spec))

    crashed = deplat(guestbook, "--to", "site-b", crash=point)
    assert crashed.returncode == 137, crashed.stderr
    journal = Journal.newest_unfinished(guestbook.spec)
    assert journal is not None
    done_before = [s for s in STEPS if journal.result_of(s) is not None]
    step = point.split(":")[0]
    assert done_before == list(STEPS[: STEPS.index(step) + (0 if ":" in point else 1)])

    resumed = deplat(guestbook, "--json", "failover", "--resume")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = json.loads(resumed.stdout)
    assert doc["ok"] and doc["resumed"]

    # DNS on exactly one site, and that site is healthy and holds the data
    target = guestbook.address("site-b")
    for name in guestbook.spec.domain.names:
        assert ns.query(name, "A") == [target]
    answer = httpx.get(guestbook.url("site-b", "/entries"), trust_env=False)
    assert [e["message"] for e in answer.json()] == ["before"]
    # no side effect repeated: every step done exactly once; a step done before the crash never restarted
    final = Journal.load(journal.path)
    assert final.finished and final.outcome == "done"
    for s in STEPS:
        assert sum(1 for r in final.records if r["kind"] == "done" and r.get("step") == s) == 1
        if s in done_before:
            assert final.attempts(s) == 1
    active = load_active(guestbook.spec)
    assert active.primary == "site-b" and len(active.history) == 1
    # the TSIG secret never reaches the journal, the output or the active set
    for text in (final.path.read_text(), resumed.stdout, resumed.stderr, crashed.stderr):
        assert ns.key_secret not in text
