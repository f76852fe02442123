"""A DNS switch is done only when every provider serves the new site: with two real BIND servers, one
of them frozen (it never answers), the failover says ``partial`` (exit 1) naming the provider left
behind, and ``--resume`` finishes the job once that server answers again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deplat.failover.journal import Journal
from deplat.state import load_active

pytestmark = pytest.mark.slow

NAMES = ("guestbook.test", "www.guestbook.test")


def deplat(guestbook, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deplat", "-f", str(guestbook.path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **guestbook.env},
    )


def test_a_switch_with_one_nameserver_down_is_partial_exits_1_and_resume_finishes_it(
    guestbook, bind_factory
) -> None:
    old = f"{guestbook.net}.11"
    ns_a = bind_factory(records={n: [old] for n in NAMES})
    ns_b = bind_factory(records={n: [old] for n in NAMES})
    guestbook.env = {**ns_a.secret_env(), **ns_b.secret_env()}
    guestbook.write(dns=[ns_a.dns_entry("ns-a"), ns_b.dns_entry("ns-b")])
    guestbook.up("site-a", "site-b")
    new = guestbook.address("site-b")

    ns_b.freeze()
    try:
        moved = deplat(guestbook, "failover", "--to", "site-b", "--yes")
        status = deplat(guestbook, "dns", "status", "--timeout", "1")
    finally:
        ns_b.thaw()

    assert moved.returncode == 1, moved.stderr
    doc = json.loads(moved.stdout)
    assert doc["outcome"] == "partial" and not doc["ok"]
    assert doc["left_behind"] == ["ns-b"]
    assert doc["switch"]["providers"] == {"ns-a": "switched", "ns-b": "failed"}
    assert all(ns_a.query(n) == [new] for n in NAMES)
    assert all(ns_b.query(n) == [old] for n in NAMES)  # still the old site: not "done"
    assert status.returncode == 1
    journal = Journal.newest_unfinished(guestbook.spec)
    assert journal is not None and journal.outcome == "partial"
    assert load_active(guestbook.spec).primary == "site-b"  # the old site is fenced all the same

    # the providers disagree now: `dns status` says so with exit 1
    split = deplat(guestbook, "dns", "status")
    assert split.returncode == 1 and json.loads(split.stdout)["agree"] is False

    resumed = deplat(guestbook, "failover", "--resume")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = json.loads(resumed.stdout)
    assert doc["outcome"] == "done" and doc["left_behind"] == []
    assert doc["switch"]["providers"] == {"ns-a": "already", "ns-b": "switched"}
    assert all(ns.query(n) == [new] for ns in (ns_a, ns_b) for n in NAMES)
    final = Journal.load(journal.path)
    assert final.finished and final.outcome == "done"
    assert final.attempts("fence") == 1 and final.attempts("restore") == 1  # only the switch ran again
    assert deplat(guestbook, "dns", "status").returncode == 0
    assert Journal.newest_unfinished(guestbook.spec) is None


def test_verify_asks_every_dns_provider_not_only_the_first(guestbook, bind_factory) -> None:
    from deplat.failover.run import run_failover

    old = f"{guestbook.net}.11"
    ns_a = bind_factory(records={n: [old] for n in NAMES})
    ns_b = bind_factory(records={n: ["192.0.2.99"] for n in NAMES})  # someone else's records
    guestbook.env = {**ns_a.secret_env(), **ns_b.secret_env()}
    guestbook.write(dns=[ns_a.dns_entry("ns-a"), ns_b.dns_entry("ns-b")])
    guestbook.up("site-a", "site-b")

    result = run_failover(guestbook.spec, guestbook.secrets(), to="site-b", wait=2.0)

    assert result.outcome == "partial" and result.left_behind == ["ns-b"]
    assert result.switch["providers"] == {"ns-a": "switched", "ns-b": "conflict"}
    assert result.verify["left_behind"] == ["ns-b"] and not result.verify["healthy"]
