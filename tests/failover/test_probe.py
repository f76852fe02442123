"""Probes against real HTTP servers on loopback: the guestbook, stand-in answers, nothing at all."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deplat.failover import control_plane
from deplat.failover.names_probe import probe_names
from deplat.failover.probe import Health, probe_site, probe_site_sync
from deplat.secrets import SecretStore
from deplat.sites import Addresses
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec
from tests.support.local_sites import free_port, loopback_address

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "guestbook" / "app.py"
TIMEOUT = 0.3


def write_spec(tmp_path: Path, services: dict[str, int], address_a: str, address_b: str) -> Spec:
    """A local two-site spec; ``services`` maps a service name to its (health) port."""
    lines = ["version: 1", "app: gb", "services:"]
    for name, port in services.items():
        lines += [
            f"  {name}:",
            "    image: x",
            f"    ports: [{{port: {port}, public: true}}]",
            "    volumes: [{name: data, path: /data, size: 1}]",
            f"    health: {{port: {port}, path: /healthz, expect: 200, timeout: 1}}",
            f'    local: {{command: [{sys.executable}, {APP}, --host, "{{host}}", --port, "{{port}}",'
            ' --data, "{data_dir}", --site, "{site}"]}',
        ]
    lines += [
        "domain: {zone: gb.test, names: [gb.test, www.gb.test]}",
        "sites:",
        f"  - {{name: site-a, provider: local, role: primary, options: {{address: {address_a}}}}}",
        f"  - {{name: site-b, provider: local, role: warm, options: {{address: {address_b}}}}}",
        "failover: {timeout: 0.3}",
    ]
    path = tmp_path / "deplat.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_spec(path)


def start_guestbook(address: str, port: int, data: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            "--host",
            address,
            "--port",
            str(port),
            "--data",
            str(data),
            "--site",
            "t",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/healthz", timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the guestbook did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Spec, str, int]]:
    """The guestbook serving on site-a's address; yields (spec, address, port)."""
    address = loopback_address()
    port = free_port([address])
    spec = write_spec(tmp_path, {"web": port}, address, loopback_address())
    proc = start_guestbook(address, port, tmp_path / "data")
    try:
        yield spec, address, port
    finally:
        stop(proc)


class CannedServer:
    """A stdlib HTTP server answering every GET with one status and body."""

    def __init__(self, address: str, port: int, status: int, body: bytes, delay: float = 0.0) -> None:
        status_, body_, delay_ = status, body, delay

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                time.sleep(delay_)
                self.send_response(status_)
                self.send_header("Content-Length", str(len(body_)))
                self.end_headers()
                self.wfile.write(body_)

        server_class = ThreadingHTTPServer
        if ":" in address:

            class V6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = V6
        self.server = server_class((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def canned() -> Iterator[object]:
    servers: list[CannedServer] = []

    def make(address: str, port: int, status: int, body: bytes, delay: float = 0.0) -> CannedServer:
        server = CannedServer(address, port, status, body, delay)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.mark.slow
def test_guestbook_answering_is_healthy(site: tuple[Spec, str, int]) -> None:
    spec, address, port = site
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.healthy
    assert [(c.service, c.status, c.ok) for c in probe.checks] == [("web", 200, True)]
    assert probe.checks[0].url == f"http://{address}:{port}/healthz"
    assert probe.checks[0].host == "gb.test"
    assert probe.control_plane == (True, "credentials accepted (local)")
    assert probe.reason == ""
    assert json.loads(json.dumps(probe.to_dict()))["health"] == "healthy"


@pytest.mark.slow
def test_one_service_of_two_failing_is_degraded(tmp_path: Path) -> None:
    address = loopback_address()
    web, api = free_port([address]), free_port([address])
    spec = write_spec(tmp_path, {"web": web, "api": api}, address, loopback_address())
    proc = start_guestbook(address, web, tmp_path / "data")
    try:
        probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    finally:
        stop(proc)
    assert probe.health is Health.degraded
    by_service = {c.service: c for c in probe.checks}
    assert by_service["web"].ok and not by_service["api"].ok
    assert by_service["api"].error_class == "refused"
    assert "api: connection refused" in probe.reason


def test_nothing_listening_is_down_refused(tmp_path: Path) -> None:
    address = loopback_address()
    spec = write_spec(tmp_path, {"web": free_port([address])}, address, loopback_address())
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.down
    assert probe.checks[0].error_class == "refused"
    assert probe.seconds < TIMEOUT + 0.5


@pytest.mark.slow
def test_accepting_but_never_answering_is_down_by_timeout(tmp_path: Path) -> None:
    address = loopback_address()
    port = free_port([address])
    spec = write_spec(tmp_path, {"web": port}, address, loopback_address())
    with socket.socket() as hole:  # listens and never accepts: the kernel completes the handshake
        hole.bind((address, port))
        hole.listen(16)
        start = time.monotonic()
        probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
        elapsed = time.monotonic() - start
    assert probe.health is Health.down
    assert probe.checks[0].error_class == "timeout"
    assert probe.checks[0].error == f"no answer in {TIMEOUT:g}s"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.7


@pytest.mark.slow
def test_slow_answer_counts_as_timeout(tmp_path: Path, canned) -> None:  # type: ignore[no-untyped-def]
    address = loopback_address()
    port = free_port([address])
    spec = write_spec(tmp_path, {"web": port}, address, loopback_address())
    canned(address, port, 200, b'{"ok": true}', delay=TIMEOUT * 3)
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.down
    assert probe.checks[0].error_class == "timeout"
    assert probe.seconds < TIMEOUT + 0.5


def test_suspension_page_is_suspended(tmp_path: Path, canned) -> None:  # type: ignore[no-untyped-def]
    address = loopback_address()
    port = free_port([address])
    spec = write_spec(tmp_path, {"web": port}, address, loopback_address())
    canned(address, port, 403, b'{"error": "AccountSuspended", "message": "suspended"}')
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.suspended
    assert probe.checks[0].status == 403
    assert probe.checks[0].error_class == "suspended"


def test_plain_403_is_down_not_suspended(tmp_path: Path, canned) -> None:  # type: ignore[no-untyped-def]
    address = loopback_address()
    port = free_port([address])
    spec = write_spec(tmp_path, {"web": port}, address, loopback_address())
    canned(address, port, 403, b"<h1>Forbidden</h1>")
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.down
    assert probe.checks[0].error_class == "http"
    assert probe.checks[0].error == "HTTP 403, expected 200"


@pytest.mark.slow
def test_suspended_control_plane_makes_a_serving_site_suspended(site: tuple[Spec, str, int]) -> None:
    spec, address, _ = site
    state = spec.base_dir / ".deplat" / "local" / "site-a" / "provider.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"state": "suspended"}', encoding="utf-8")
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.suspended
    assert probe.checks[0].ok
    assert probe.control_plane == (False, "account suspended (AccountSuspended)")
    assert probe.control_plane_class == "suspended"


@pytest.mark.slow
def test_control_plane_can_be_left_out(site: tuple[Spec, str, int]) -> None:
    spec, address, _ = site
    probe = probe_site_sync(
        spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None, control_plane=False
    )
    assert probe.health is Health.healthy
    assert probe.control_plane is None


def test_site_without_address_is_down(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"web": 18000}, loopback_address(), loopback_address())
    probe = probe_site_sync(spec, "site-a", Addresses(), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.down
    assert probe.checks[0].error_class == "no_address"


@pytest.mark.slow
async def test_probe_site_is_async_and_runs_checks_concurrently(tmp_path: Path) -> None:
    address = loopback_address()
    ports = {f"svc{i}": free_port([address]) for i in range(4)}
    spec = write_spec(tmp_path, ports, address, loopback_address())
    holes = []
    try:
        for port in ports.values():
            hole = socket.socket()
            hole.bind((address, port))
            hole.listen(16)
            holes.append(hole)
        start = time.monotonic()
        probe = await probe_site(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
        elapsed = time.monotonic() - start
    finally:
        for hole in holes:
            hole.close()
    assert [c.error_class for c in probe.checks] == ["timeout"] * 4
    assert elapsed < 2 * TIMEOUT + 0.3  # four timeouts in parallel, not in a row


@pytest.mark.slow
async def test_sync_wrapper_works_inside_a_running_loop(site: tuple[Spec, str, int]) -> None:
    spec, address, _ = site
    probe = probe_site_sync(spec, "site-a", Addresses([address]), timeout=TIMEOUT, secrets=None)
    await asyncio.sleep(0)
    assert probe.health is Health.healthy


def test_control_plane_reason_is_masked_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deplat.providers import local

    spec = write_spec(tmp_path, {"web": 18000}, loopback_address(), loopback_address())
    secrets = SecretStore(spec, environ={"TOKEN": "s3cr3t-value"})
    assert secrets.get("TOKEN") == "s3cr3t-value"

    def leaky(*args: object) -> tuple[bool, str, str]:
        return False, "token s3cr3t-value was refused", "fatal"

    monkeypatch.setattr(local.provider, "control_plane_check", leaky)
    ok, reason, error_class = control_plane.check(spec, "site-a", secrets, 1.0)
    assert (ok, error_class) == (False, "fatal")
    assert "s3cr3t-value" not in reason and "********" in reason

    def hung(*args: object) -> tuple[bool, str, None]:
        time.sleep(2)
        return True, "late", None

    monkeypatch.setattr(local.provider, "control_plane_check", hung)
    start = time.monotonic()
    assert control_plane.check(spec, "site-a", secrets, 0.2)[2] == "timeout"
    assert time.monotonic() - start < 1.0

    def broken(*args: object) -> tuple[bool, str, None]:
        raise RuntimeError("AccountSuspended: the account s3cr3t-value is blocked")

    monkeypatch.setattr(local.provider, "control_plane_check", broken)
    ok, reason, error_class = control_plane.check(spec, "site-a", secrets, 1.0)
    assert not ok and "RuntimeError" in reason and "s3cr3t-value" not in reason
    assert error_class == "suspended"  # the provider's own table classified its exception


def test_provider_without_control_plane_check_is_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deplat.providers import local

    spec = write_spec(tmp_path, {"web": 18000}, loopback_address(), loopback_address())
    from deplat.providers.base import HostingProvider

    base_check = HostingProvider.control_plane_check.__get__(local.provider)
    monkeypatch.setattr(local.provider, "control_plane_check", base_check)
    assert control_plane.check(spec, "site-a", None, 1.0) == (True, "not checked", None)


@pytest.mark.slow
async def test_names_through_a_mapping_find_the_healthy_address(site: tuple[Spec, str, int]) -> None:
    spec, address, _ = site
    elsewhere = loopback_address()
    result = await probe_names(
        spec, None, timeout=TIMEOUT, mapping={"gb.test": [address], "www.gb.test": [address, elsewhere]}
    )
    assert result.healthy == [address]
    assert result.health is Health.degraded  # www.gb.test also points at an address that refuses
    assert not result.serves_only([address])
    only = await probe_names(
        spec, None, timeout=TIMEOUT, mapping={"gb.test": [address], "www.gb.test": [address]}
    )
    assert only.health is Health.healthy
    assert only.serves_only([address])
    assert {c.host for c in only.checks} == {"gb.test", "www.gb.test"}


@pytest.mark.slow
async def test_names_through_a_real_bind(site: tuple[Spec, str, int], tmp_path: Path) -> None:
    bind = pytest.importorskip("tests.support.bind")
    spec, address, _ = site
    with bind.start_bind(tmp_path / "ns", zone="gb.test", records={"gb.test": [address]}) as ns:
        result = await probe_names(spec, (ns.host, ns.port), timeout=1.0)
    assert result.names["gb.test"] == [address]
    assert result.names["www.gb.test"] == []
    assert result.errors["www.gb.test"] == "NXDOMAIN"
    assert result.healthy == [address]
    assert result.health is Health.degraded


def test_an_ipv6_only_site_is_probed_at_its_ipv6_address(tmp_path: Path, canned) -> None:  # type: ignore[no-untyped-def]
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    spec = write_spec(tmp_path, {"web": port}, loopback_address(), loopback_address())
    canned("::1", port, 200, b'{"ok": true}')
    probe = probe_site_sync(spec, "site-a", Addresses(ipv6=["::1"]), timeout=TIMEOUT, secrets=None)
    assert probe.health is Health.healthy
    assert probe.checks[0].url == f"http://[::1]:{port}/healthz"
