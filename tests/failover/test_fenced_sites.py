"""Fenced sites can be managed: status tells the truth about a live one, destroy stops it (named or
not), the watcher reports one that answers healthy again, and ``deplat rejoin`` brings it back as a
standby holding the primary's data."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from deplat.cli import run as cli_run
from deplat.events import EventKind, Recorder
from deplat.failover.backup import backup_site, make_store
from deplat.failover.run import run_failover
from deplat.failover.watch import Watcher
from deplat.state import load_active

pytestmark = pytest.mark.slow


def answers(url: str) -> bool:
    try:
        return httpx.get(url, trust_env=False, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def sign(url: str, message: str) -> None:
    answer = httpx.post(url + "/entries", json={"name": "t", "message": message}, trust_env=False)
    assert answer.status_code == 201


def messages(url: str) -> list[str]:
    return [e["message"] for e in httpx.get(url + "/entries", trust_env=False, timeout=2).json()]


def failed_over_from_a_live_site(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    # unplanned, as a watcher's false alarm: the old site keeps running (a planned move stops it)
    result = run_failover(guestbook.spec, guestbook.secrets(), to="site-b", reference_time=time.time() - 5)
    assert result.ok and not result.planned and "site-a" in load_active(guestbook.spec).fenced
    assert answers(guestbook.url("site-a"))  # fenced, yet its processes still run


def test_status_shows_a_live_fenced_site_as_running(guestbook, capsys: pytest.CaptureFixture[str]) -> None:
    failed_over_from_a_live_site(guestbook)
    assert cli_run(["-f", str(guestbook.path), "--json", "status"]) == 0
    sites = {s["site"]: s for s in json.loads(capsys.readouterr().out)["sites"]}
    assert sites["site-a"]["role"] == "fenced" and sites["site-a"]["running"] is True


def test_destroy_yes_stops_fenced_local_sites_too(guestbook) -> None:
    failed_over_from_a_live_site(guestbook)
    assert cli_run(["-f", str(guestbook.path), "destroy", "--yes"]) == 0
    assert not answers(guestbook.url("site-a")) and not answers(guestbook.url("site-b"))


def test_destroy_site_acts_on_a_named_fenced_site(guestbook, capsys: pytest.CaptureFixture[str]) -> None:
    failed_over_from_a_live_site(guestbook)
    assert cli_run(["-f", str(guestbook.path), "--json", "destroy", "--site", "site-a", "--yes"]) == 0
    assert "no site to act on" not in capsys.readouterr().out
    assert not answers(guestbook.url("site-a")) and answers(guestbook.url("site-b"))


def test_a_fenced_site_answering_healthy_is_reported_and_rejoins_with_the_primarys_data(
    guestbook, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_over_from_a_live_site(guestbook)
    spec, secrets = guestbook.spec, guestbook.secrets()
    sign(guestbook.url("site-a", ""), "written to the old site after the failover")
    sign(guestbook.url("site-b", ""), "on the primary")
    events = Recorder()
    Watcher(spec, secrets, emit=events, log_path=None, keep_front_door=False).run(max_cycles=3)
    (report,) = events.of(EventKind.WATCH_FENCED_HEALTHY)
    assert report.site == "site-a" and "deplat rejoin site-a" in report.message

    assert cli_run(["-f", str(guestbook.path), "--json", "rejoin", "site-a", "--yes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["role"] == "warm" and doc["health"] == "healthy"
    active = load_active(spec)
    assert "site-a" not in active.fenced and active.primary == "site-b"
    assert (
        messages(guestbook.url("site-a", "")) == messages(guestbook.url("site-b", "")) == ["on the primary"]
    )


def test_rejoin_of_a_site_that_is_not_fenced_is_bad_input(guestbook, capsys) -> None:
    guestbook.write()
    assert cli_run(["-f", str(guestbook.path), "rejoin", "site-b", "--yes"]) == 2
    assert "not fenced" in capsys.readouterr().err


def test_the_primary_is_backed_up_before_a_rejoin(guestbook) -> None:
    failed_over_from_a_live_site(guestbook)
    spec = guestbook.spec
    before = len(make_store(spec).list("web"))
    from deplat.failover.rejoin import rejoin

    result = rejoin(spec, guestbook.secrets(), "site-a")
    assert len(make_store(spec).list("web")) == before + 1
    assert result.backed_up and result.backed_up[0]["site"] == "site-b"
    backup_site(spec, "site-b", make_store(spec))  # the store still works for the next backup
