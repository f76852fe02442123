"""The fault injector: each mode seen by a real probe, connections cut on change, data kept."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.errors import InputError
from deplat.failover.faults import FaultInjector, clear_leftovers, provider_state
from deplat.failover.probe import Health, probe_site_sync
from deplat.sites import Addresses
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec
from tests.support.local_sites import free_port, loopback_address

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "guestbook" / "app.py"
TIMEOUT = 0.3


def write_spec(tmp_path: Path) -> Spec:
    address = loopback_address()
    port = free_port([address])
    text = f"""\
version: 1
app: gb
services:
  web:
    image: x
    ports: [{{port: {port}, public: true}}]
    volumes: [{{name: data, path: /data, size: 1}}]
    health: {{port: {port}, path: /healthz, expect: 200, timeout: 1}}
    local: {{command: [{sys.executable}, {APP}, --host, "{{host}}", --port, "{{port}}", --data, "{{data_dir}}", --site, "{{site}}"]}}
domain: {{zone: gb.test, names: [gb.test]}}
failover: {{timeout: {TIMEOUT}}}
sites:
  - {{name: site-a, provider: local, role: primary, options: {{address: {address}}}}}
  - {{name: site-b, provider: local, role: warm, options: {{address: {loopback_address()}}}}}
"""
    path = tmp_path / "deplat.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def probe(spec: Spec, injector: FaultInjector):  # type: ignore[no-untyped-def]
    return probe_site_sync(spec, "site-a", Addresses([injector.address]), timeout=TIMEOUT, secrets=None)


@pytest.fixture
def injector(tmp_path: Path) -> Iterator[FaultInjector]:
    spec = write_spec(tmp_path)
    fault = FaultInjector(spec, "site-a", slow_delay=2.0, restart_on_clear=False)
    try:
        yield fault
    finally:
        fault.clear()


EXPECTED = {
    "suspended": (Health.suspended, "refused"),  # the VM stops; the control plane says why
    "refused": (Health.down, "refused"),
    "blackhole": (Health.down, "timeout"),
    "slow": (Health.down, "timeout"),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_is_classified_by_a_real_probe(injector: FaultInjector, mode: str) -> None:
    injector.apply(mode)  # type: ignore[arg-type]
    result = probe(injector.spec, injector)
    health, error_class = EXPECTED[mode]
    assert result.health is health
    assert result.checks[0].error_class == error_class
    assert result.seconds < TIMEOUT + 0.5


def test_suspended_site_stops_answering_and_its_control_plane_refuses(injector: FaultInjector) -> None:
    injector.apply("suspended")
    port = injector.ports[0]
    with pytest.raises(urllib.error.URLError) as info:  # no HTTP answer at all, as from a stopped VM
        urllib.request.urlopen(f"http://{injector.address}:{port}/anything", timeout=2)
    assert not isinstance(info.value, urllib.error.HTTPError)
    assert isinstance(info.value.reason, ConnectionRefusedError)
    assert provider_state(injector.spec, "site-a")["state"] == "suspended"
    result = probe(injector.spec, injector)
    assert result.health is Health.suspended  # told from "down" by the control plane only
    assert result.control_plane == (False, "account suspended (AccountSuspended)")
    assert all(c.error_class != "suspended" for c in result.checks)


def test_refused_is_down_not_suspended_while_the_control_plane_answers(injector: FaultInjector) -> None:
    injector.apply("refused")
    result = probe(injector.spec, injector)
    assert result.health is Health.down
    assert result.control_plane is not None and result.control_plane[0] is True


def test_clear_brings_back_an_active_control_plane_and_frees_the_ports(injector: FaultInjector) -> None:
    injector.apply("suspended")
    injector.clear()
    assert provider_state(injector.spec, "site-a") == {"state": "active"}
    with socket.socket() as s:  # the port can be bound again: nothing of ours listens
        s.bind((injector.address, injector.ports[0]))
    assert injector.mode is None


def test_leftovers_of_a_killed_drill_are_cleared(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    FaultInjector(spec, "site-a", restart_on_clear=False)._set_provider_state("suspended")
    assert provider_state(spec, "site-a")["state"] == "suspended"
    assert clear_leftovers(spec) == ["site-a"]
    assert provider_state(spec, "site-a") == {"state": "active"}
    assert clear_leftovers(spec) == []


def test_a_mode_change_cuts_held_connections(injector: FaultInjector) -> None:
    injector.apply("blackhole")
    with socket.create_connection((injector.address, injector.ports[0]), timeout=2) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: gb.test\r\n\r\n")
        time.sleep(0.1)  # let the stand-in accept it
        start = time.monotonic()
        injector.apply("slow")
        conn.settimeout(2)
        try:
            data = conn.recv(1024)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed, not answered by the new mode over the old connection
        assert time.monotonic() - start < 2


def test_clear_is_bounded_while_slow_answers_are_pending(injector: FaultInjector) -> None:
    injector.apply("slow")
    conns = [socket.create_connection((injector.address, injector.ports[0]), timeout=2) for _ in range(5)]
    try:
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        time.sleep(0.1)
        start = time.monotonic()
        injector.clear()
        assert time.monotonic() - start < 1.0
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.slow
def test_a_slow_answer_does_come_eventually(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with FaultInjector(spec, "site-a", slow_delay=0.4, restart_on_clear=False) as fault:
        fault.apply("slow")
        start = time.monotonic()
        with urllib.request.urlopen(f"http://{fault.address}:{fault.ports[0]}/healthz", timeout=3) as answer:
            assert answer.status == 200
        assert time.monotonic() - start >= 0.4


def test_unknown_modes_and_cloud_sites_are_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with pytest.raises(InputError, match="unknown fault mode"):
        FaultInjector(spec, "site-a").apply("melted")  # type: ignore[arg-type]
    cloud = "  - {name: cloud, provider: aws, role: cold, region: eu-central-1}\n"
    (tmp_path / "deplat.yaml").write_text((tmp_path / "deplat.yaml").read_text() + cloud)
    cloud_spec = load_spec(tmp_path / "deplat.yaml")
    with pytest.raises(InputError, match="only be injected into local sites"):
        FaultInjector(cloud_spec, "cloud")


@pytest.mark.slow
def test_a_real_local_site_is_suspended_and_comes_back_with_its_data(tmp_path: Path) -> None:
    from deplat.local.driver import LocalDriver
    from deplat.secrets import SecretStore

    spec = write_spec(tmp_path)
    secrets = SecretStore(spec)
    driver = LocalDriver(spec, secrets)
    site = spec.site("site-a")
    assert driver.up(site).ok
    try:
        address = driver.addresses(site).ipv4[0]
        port = spec.services["web"].health.port  # type: ignore[union-attr]
        request = urllib.request.Request(
            f"http://{address}:{port}/entries",
            data=json.dumps({"name": "t", "message": "before the suspension"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=3) as answer:
            assert answer.status == 201
        data_file = tmp_path / ".deplat" / "local" / "site-a" / "data" / "web" / "entries.jsonl"
        before = data_file.read_bytes()
        assert probe(spec, FaultInjector(spec, site)).health is Health.healthy

        with FaultInjector(spec, site, secrets) as fault:
            fault.apply("suspended")
            assert probe(spec, fault).health is Health.suspended
            assert data_file.read_bytes() == before  # stopped, not deleted
            assert not driver.status(site).running
        after = probe(spec, FaultInjector(spec, site))
        assert after.health is Health.healthy
        with urllib.request.urlopen(f"http://{address}:{port}/entries", timeout=3) as answer:
            assert [e["message"] for e in json.loads(answer.read())] == ["before the suspension"]
    finally:
        driver.destroy(site)
