"""The local front door: forwards to the current site, switches by compare-and-swap, one switch wins."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from deplat.failover import frontdoor
from deplat.spec import load_spec
from tests.failover.conftest import free_tcp_port, guestbook_doc


class Named(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"site": self.server.site_name, "path": self.path}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def net() -> str:
    return f"127.{random.randint(1, 250)}.{random.randint(1, 250)}"


@pytest.fixture
def spec(tmp_path: Path, net: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DEPLAT_FRONT_DOOR", raising=False)
    port = free_tcp_port(f"{net}.10")
    path = tmp_path / "deplat.yaml"
    path.write_text(yaml.safe_dump(guestbook_doc(net, port)), encoding="utf-8")
    return load_spec(path)


@pytest.fixture
def upstreams(spec, net: str) -> Iterator[list[ThreadingHTTPServer]]:
    port = frontdoor.front_door_ports(spec)[0]
    servers = []
    for i, name in enumerate(("site-a", "site-b")):
        server = ThreadingHTTPServer((f"{net}.{11 + i}", port), Named)
        server.site_name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_front_door_listens_on_the_first_local_sites_net_dot_10(spec, net: str, monkeypatch) -> None:
    assert frontdoor.front_door_address(spec) == f"{net}.10"
    monkeypatch.setenv("DEPLAT_FRONT_DOOR", "127.0.0.99")
    assert frontdoor.front_door_address(spec) == "127.0.0.99"


@pytest.mark.slow
def test_front_door_forwards_to_the_current_site_and_follows_a_switch(spec, upstreams) -> None:
    with frontdoor.FrontDoor(spec).start("site-a") as door:
        url = door.urls[0] + "/entries?x=1"
        first = httpx.get(url, trust_env=False)
        assert first.json() == {"site": "site-a", "path": "/entries?x=1"}
        assert first.headers[frontdoor.SITE_HEADER] == "site-a"
        assert frontdoor.switch(spec, "site-a", "site-b").outcome == "switched"
        second = httpx.get(url, trust_env=False)
        assert second.json()["site"] == "site-b"


def test_switch_is_compare_and_swap(spec) -> None:
    frontdoor.ensure_upstream(spec, "site-a")
    assert frontdoor.switch(spec, "site-a", "site-b").outcome == "switched"
    assert frontdoor.switch(spec, "site-a", "site-b").outcome == "already"
    lost = frontdoor.switch(spec, "site-a", "site-c")
    assert lost.outcome == "conflict" and lost.site == "site-b"
    assert frontdoor.read_upstream(spec)["site"] == "site-b"


def test_concurrent_switches_make_exactly_one_switch(spec) -> None:
    frontdoor.ensure_upstream(spec, "site-a")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def one(target: str) -> None:
        barrier.wait()
        outcomes.append(frontdoor.switch(spec, "site-a", target).outcome)

    threads = [threading.Thread(target=one, args=("site-b" if i % 2 else "site-c",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("switched") == 1
    assert sorted(set(outcomes) - {"switched"}) <= ["already", "conflict"]


def test_front_door_answers_502_when_the_site_refuses(spec) -> None:
    with frontdoor.FrontDoor(spec).start("site-a") as door:
        answer = httpx.get(door.urls[0] + "/healthz", trust_env=False)
    assert answer.status_code == 502
    assert answer.headers[frontdoor.SITE_HEADER] == "site-a"
