"""`deplat up / status / destroy` end to end on local sites: real processes, real HTTP on loopback.

The guestbook example is copied into tmp_path on free loopback addresses and a free port. Sites are
reached only through the CLI (and so through ``deplat.sites.driver_for``); every process a test
starts is stopped by the fixture, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deplat.cli import run
from deplat.local import sitestate
from deplat.state import record_failover
from tests.engine.conftest import FakePulumi
from tests.support.cli import cli
from tests.support.local_sites import GUESTBOOK, Guestbook, free_addresses, free_port, guestbook_data

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_tty")]

Make = Callable[..., Guestbook]


@pytest.fixture
def guestbook(tmp_path: Path) -> Iterator[Make]:
    made: list[Guestbook] = []

    def make(sites: int = 3, edit: Callable[[dict[str, Any]], None] | None = None) -> Guestbook:
        where = tmp_path / f"app{len(made)}"
        where.mkdir()
        shutil.copy(GUESTBOOK / "app.py", where / "app.py")
        addresses = free_addresses(sites)
        data = guestbook_data(sites, free_port(addresses), addresses)
        if edit:
            edit(data)
        book = Guestbook(where, data)
        made.append(book)
        return book

    yield make
    for book in made:
        leftovers = book.pids()
        with contextlib.suppress(Exception):
            run(["-f", str(book.spec_path), "destroy", "--yes", "--json"])
        for pid, identity in leftovers + book.pids():
            if sitestate.process_alive(pid, identity):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def healthy(book: Guestbook, site: str) -> bool:
    try:
        return httpx.get(book.url(site, "/healthz"), timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def statuses(book: Guestbook, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    capsys.readouterr()
    assert cli("-f", str(book.spec_path), "status", "--json") == 0
    return {s["site"]: s for s in json.loads(capsys.readouterr().out)["sites"]}


def test_up_status_destroy_on_local_sites(guestbook: Make, capsys: pytest.CaptureFixture[str]) -> None:
    book = guestbook()
    assert cli("-f", str(book.spec_path), "up", "--yes") == 0
    out = capsys.readouterr().out
    for site in ("local-a", "local-b"):
        assert healthy(book, site)
        assert book.url(site) in out
    assert not healthy(book, "local-c")  # cold: stood up on failover, or when named
    sites = statuses(book, capsys)
    assert sites["local-a"]["running"] and sites["local-a"]["role"] == "primary"
    assert sites["local-b"]["running"] and sites["local-b"]["role"] == "warm"
    assert not sites["local-c"]["exists"] and sites["local-c"]["role"] == "cold"

    # a second up changes nothing, so it needs no confirmation even without a terminal
    assert cli("-f", str(book.spec_path), "up", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and {s["site"]: s["changes"] for s in doc["sites"]} == {
        "local-a": {"same": 1},
        "local-b": {"same": 1},
    }

    assert cli("-f", str(book.spec_path), "destroy") == 2  # asks first: not at a terminal
    assert healthy(book, "local-a")
    assert cli("-f", str(book.spec_path), "destroy", "--yes") == 0
    assert not healthy(book, "local-a") and not healthy(book, "local-b")
    sites = statuses(book, capsys)
    assert not any(s["running"] for s in sites.values())


def test_a_named_cold_site_is_stood_up(guestbook: Make, capsys: pytest.CaptureFixture[str]) -> None:
    book = guestbook()
    assert cli("-f", str(book.spec_path), "up", "--yes", "--site", "local-c") == 0
    assert healthy(book, "local-c") and not healthy(book, "local-a")


def test_a_fenced_site_is_never_touched(guestbook: Make, capsys: pytest.CaptureFixture[str]) -> None:
    book = guestbook()
    record_failover(book.spec, "local-a", "local-b", "drill")
    assert cli("-f", str(book.spec_path), "up", "--yes", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["site"] for s in doc["sites"]] == ["local-b"]
    assert doc["sites"][0]["role"] == "primary" and "fenced" in doc["skipped"]["local-a"]
    assert healthy(book, "local-b") and not healthy(book, "local-a")


def test_local_and_cloud_sites_in_one_run_and_a_suspended_one_stops_nothing(
    guestbook: Make, fake_pulumi: FakePulumi, stand_ins: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    def add_cloud_site(data: dict[str, Any]) -> None:
        data["sites"].append(
            {
                "name": "aws-x",
                "provider": "aws",
                "role": "warm",
                "region": "eu-central-1",
                "zone": "eu-central-1a",
            }
        )

    book = guestbook(sites=2, edit=add_cloud_site)
    fake_pulumi.scenarios(aws_x="suspended")
    assert cli("-f", str(book.spec_path), "up", "--yes", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    by_site = {s["site"]: s for s in doc["sites"]}
    assert by_site["local-a"]["ok"] and by_site["local-b"]["ok"]
    assert by_site["aws-x"]["error_class"] == "suspended"
    assert healthy(book, "local-a") and healthy(book, "local-b")
    assert [c["argv"][-1] for c in fake_pulumi.commands("up")] == ["aws-x"]
