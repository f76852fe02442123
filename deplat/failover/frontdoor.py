"""The local front door: a reverse proxy on loopback, the traffic switch when the spec has no DNS.

A spec without ``dns:`` providers (the guestbook demo on a fresh machine, where no DNS server is
installed) still needs a place where "users" reach the app and that a failover can switch. The
front door is that place: a small threaded HTTP reverse proxy that forwards every request to the
current primary site.

Where it listens (no spec option needed): on every public port of the app's services, at
``127.A.B.10`` where ``127.A.B`` is the first local site's /24 (the guestbook's sites are
127.0.0.11-13, so its front door is ``http://127.0.0.10:18080``). ``DEPLAT_FRONT_DOOR=ADDRESS``
overrides the address.

Which site it forwards to lives in ``.deplat/frontdoor.json`` (``{"site", "address", "version"}``);
``switch`` changes it with compare-and-swap under a file lock (only if it still points at the old
site), so two watchers produce exactly one switch. The proxy re-reads the file when it changes, and
answers with ``Connection: close`` so that no client keeps a connection to the old site. Each answer
carries ``X-Deplat-Site: <site>`` so a drill can tell which site answered.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deplat.errors import InputError
from deplat.files import exclusive_lock, write_json_atomic
from deplat.paths import paths
from deplat.providers import provider_of
from deplat.spec.model import Spec

SITE_HEADER = "X-Deplat-Site"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


def forwards_to(spec: Spec, site: str) -> bool:
    """Can the front door (a proxy on this machine) forward to ``site``? Only to a local site: a
    cloud site's traffic is switched by DNS (the spec's ``dns:`` section)."""
    return provider_of(spec.site(site)).capabilities.runs_locally


def site_address(spec: Spec, site: str) -> str:
    """A local site's loopback address (from the spec: no driver call); ``InputError`` for a
    cloud site, which the front door cannot forward to."""
    from deplat.providers.local import address

    if not forwards_to(spec, site):
        raise InputError(
            f"the front door forwards only to local sites, and {site} is a "
            f"{spec.site(site).provider.value} site",
            hint="give the spec a dns: section: traffic to cloud sites is switched by DNS",
        )
    return address(spec.site(site), spec)


def front_door_address(spec: Spec) -> str:
    explicit = os.environ.get("DEPLAT_FRONT_DOOR")
    if explicit:
        return explicit
    local = [s for s in spec.sites if provider_of(s).capabilities.runs_locally]
    if not local:
        return "127.0.0.10"
    first = site_address(spec, local[0].name)
    if ":" in first:
        return "127.0.0.10"
    return ".".join([*first.split(".")[:3], "10"])


def front_door_ports(spec: Spec) -> list[int]:
    ports: list[int] = []
    for svc in spec.services.values():
        ports += [p for p in svc.public_ports if p not in ports]
    return ports


def uses_front_door(spec: Spec) -> bool:
    """The front door is the traffic switch when the spec configures no DNS provider."""
    return not spec.dns


def state_path(spec: Spec) -> Path:
    return paths(spec).front_door


def read_upstream(spec: Spec) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(spec).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _locked(spec: Spec) -> AbstractContextManager[int]:
    return exclusive_lock(paths(spec).front_door_lock)


def _write(spec: Spec, site: str, version: int) -> dict[str, Any]:
    doc = {"site": site, "address": site_address(spec, site), "version": version, "at": time.time()}
    write_json_atomic(state_path(spec), doc)
    return doc


def ensure_upstream(spec: Spec, site: str) -> dict[str, Any]:
    """Point the front door at ``site`` unless it already points somewhere (first start)."""
    with _locked(spec):
        current = read_upstream(spec)
        if current and current.get("site") in {s.name for s in spec.sites}:
            return current
        return _write(spec, site, 1)


@dataclass
class SwitchOutcome:
    outcome: str  # switched | already | conflict
    site: str | None  # where the front door points after the call
    version: int

    @property
    def ok(self) -> bool:
        return self.outcome in {"switched", "already"}

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "site": self.site, "version": self.version}


def switch(spec: Spec, old: str | None, new: str) -> SwitchOutcome:
    """Compare-and-swap: point the front door at ``new`` only if it points at ``old`` (or nowhere)."""
    with _locked(spec):
        current = read_upstream(spec) or {}
        site, version = current.get("site"), int(current.get("version", 0))
        if site == new:
            return SwitchOutcome("already", site, version)
        if site is not None and old is not None and site != old:
            return SwitchOutcome("conflict", site, version)
        _write(spec, new, version + 1)
        return SwitchOutcome("switched", new, version + 1)


class _Upstream:
    """The current upstream, re-read from the state file when the file changes."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._stamp: tuple[int, int] | None = None
        self._doc: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any] | None:
        path = state_path(self.spec)
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return None
        with self._lock:
            if stamp != self._stamp:
                self._doc, self._stamp = read_upstream(self.spec), stamp
            return self._doc


def _handler(upstream: _Upstream, port: int, timeout: float) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        server_version = "deplat-frontdoor"
        protocol_version = "HTTP/1.0"  # one request per connection: a switch is seen at once

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _fail(self, status: int, message: str, site: str | None) -> None:
            body = json.dumps({"error": message, "front_door": True}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if site:
                self.send_header(SITE_HEADER, site)
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            doc = upstream.get()
            if not doc:
                self._fail(503, "the front door has no upstream yet", None)
                return
            site, address = str(doc["site"]), str(doc["address"])
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Connection"] = "close"
            conn = http.client.HTTPConnection(address, port, timeout=timeout)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except TimeoutError:
                self._fail(504, f"site {site} did not answer in {timeout:g} s", site)
                return
            except OSError as exc:
                self._fail(502, f"site {site}: {type(exc).__name__}", site)
                return
            finally:
                conn.close()
            self.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header(SITE_HEADER, site)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward  # noqa: N815

    return Proxy


@dataclass
class FrontDoor:
    """The running front door: one threaded proxy per public port. ``start()`` / ``stop()``."""

    spec: Spec
    timeout: float = 5.0
    address: str = ""
    servers: list[ThreadingHTTPServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.address = self.address or front_door_address(self.spec)

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.address}:{port}" for port in front_door_ports(self.spec)]

    def start(self, primary: str) -> FrontDoor:
        ensure_upstream(self.spec, primary)
        upstream = _Upstream(self.spec)
        try:
            for port in front_door_ports(self.spec):
                server = ThreadingHTTPServer((self.address, port), _handler(upstream, port, self.timeout))
                server.daemon_threads = True
                self.servers.append(server)
                thread = threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
                )
                thread.start()
                self.threads.append(thread)
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=2)
        self.servers.clear()
        self.threads.clear()

    def __enter__(self) -> FrontDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def front_door_running(spec: Spec, timeout: float = 0.3) -> bool:
    """Is something listening on the front door's first port?"""
    import socket

    ports = front_door_ports(spec)
    if not ports:
        return False
    try:
        with socket.create_connection((front_door_address(spec), ports[0]), timeout=timeout):
            return True
    except OSError:
        return False


def check(spec: Spec, site: str, timeout: float) -> list[dict[str, Any]] | None:
    """Each service's health check asked through the front door: ``ok`` when it answers as expected
    and from ``site``. None when no front door is running."""
    import httpx

    if not front_door_running(spec):
        return None
    address = front_door_address(spec)
    checks: list[dict[str, Any]] = []
    for name, svc in spec.services.items():
        if svc.health is None or svc.health.port not in front_door_ports(spec):
            continue
        url = f"http://{address}:{svc.health.port}{svc.health.path}"
        try:
            answer = httpx.get(url, timeout=timeout, trust_env=False)
        except httpx.HTTPError as exc:
            checks.append({"service": name, "url": url, "ok": False, "error": type(exc).__name__})
            continue
        served_by = answer.headers.get(SITE_HEADER)
        ok = answer.status_code == svc.health.expect and served_by == site
        checks.append(
            {"service": name, "url": url, "status": answer.status_code, "site": served_by, "ok": ok}
        )
    return checks
