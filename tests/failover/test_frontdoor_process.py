"""The front door is its own process: ``deplat up`` starts it (the app's URL answers right after
``up``), watchers only switch it, two watchers started together both run, stopping a watcher leaves
it serving, and ``deplat destroy`` stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deplat.cli import run as cli_run
from deplat.failover import frontdoor, frontdoor_process
from deplat.files import pid_alive

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


def back_within(url: str, seconds: float) -> tuple[str | None, float]:
    """Who serves ``url`` once it answers again, and after how long (None: not within ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        site = served_by(url)
        if site is not None:
            return site, time.monotonic() - started
        time.sleep(0.05)
    return None, seconds


def test_a_killed_front_door_comes_back_by_itself_with_its_routing_and_no_watcher(guestbook) -> None:
    guestbook.write()
    assert cli_run(["-f", str(guestbook.path), "up", "--yes"]) == 0
    spec = guestbook.spec
    url = frontdoor.FrontDoor(spec).urls[0]
    first = frontdoor_process.running(spec)
    assert first is not None and first.door_pid not in (0, first.pid)

    os.kill(first.door_pid, signal.SIGKILL)  # no watcher runs: only its supervisor can bring it back
    site, took = back_within(url, 3.0)
    assert site == "site-a", "the front door did not answer again within 3 s"  # the primary
    print(f"front door back {took:.2f} s after kill -9")
    second = frontdoor_process.running(spec)
    assert second is not None and second.pid == first.pid and second.door_pid != first.door_pid

    # the routing comes from the front door's state file (a watcher's switch), not from a default
    assert frontdoor.switch(spec, "site-a", "site-b").ok
    assert served_by(url) == "site-b"
    os.kill(second.door_pid, signal.SIGKILL)
    assert back_within(url, 3.0)[0] == "site-b"

    third = frontdoor_process.running(spec)
    assert third is not None
    assert cli_run(["-f", str(guestbook.path), "destroy", "--yes"]) == 0
    assert frontdoor_process.running(spec) is None and served_by(url) is None
    for pid in (third.pid, third.door_pid):  # the supervisor and its door
        assert not pid_alive(pid)


CLOUD_WITHOUT_DNS = """\
app: shop
services:
  web:
    image: ghcr.io/example/web:1
    ports: [{port: 8080, public: true}]
domain: {zone: shop.example.org, names: [shop.example.org]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1}
  - {name: gcp-b, provider: gcp, role: warm, region: europe-west3, options: {project: shop-1}}
"""


def test_a_cloud_primary_without_dns_gets_no_front_door_and_a_switch_to_it_says_why(tmp_path: Path) -> None:
    from deplat.errors import InputError
    from deplat.spec.loader import load_spec

    (tmp_path / "deplat.yaml").write_text(CLOUD_WITHOUT_DNS)
    spec = load_spec(tmp_path / "deplat.yaml")
    assert frontdoor.uses_front_door(spec)  # no dns: section
    assert frontdoor_process.ensure_running(spec) is None  # nothing on this machine forwards to aws-a
    assert not frontdoor_process.running(spec)
    with pytest.raises(InputError, match="only to local sites") as refused:
        frontdoor.site_address(spec, "gcp-b")
    assert "dns:" in (refused.value.hint or "")
