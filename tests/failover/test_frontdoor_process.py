"""The front door is its own process: ``deplat up`` starts it (the app's URL answers right after
``up``), watchers only switch it, two watchers started together both run, stopping a watcher leaves
it serving, and ``deplat destroy`` stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from deplat.cli import run as cli_run
from deplat.failover import frontdoor, frontdoor_process

pytestmark = pytest.mark.slow


def served_by(url: str) -> str | None:
    try:
        answer = httpx.get(url + "/healthz", trust_env=False, timeout=2)
    except httpx.HTTPError:
        return None
    return answer.headers.get(frontdoor.SITE_HEADER) if answer.status_code == 200 else None


def watcher(guestbook) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deplat", "-f", str(guestbook.path), "--json", "watch", "--for", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **guestbook.env},
    )


def test_up_starts_the_front_door_and_it_outlives_every_watcher(guestbook) -> None:
    guestbook.write()
    assert cli_run(["-f", str(guestbook.path), "up", "--yes"]) == 0
    spec = guestbook.spec
    url = frontdoor.FrontDoor(spec).urls[0]
    assert served_by(url) == "site-a"  # right after up, before any watcher
    door = frontdoor_process.running(spec)
    assert door is not None

    first, second = watcher(guestbook), watcher(guestbook)  # started together: no race for the door
    try:
        time.sleep(4)
        assert first.poll() is None and second.poll() is None
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        assert served_by(url) == "site-a"  # the stopped watcher took nothing down
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert served_by(url) == "site-a"
    still = frontdoor_process.running(spec)
    assert still is not None and still.pid == door.pid not in (first.pid, second.pid)

    assert cli_run(["-f", str(guestbook.path), "destroy", "--yes"]) == 0
    assert frontdoor_process.running(spec) is None and served_by(url) is None
