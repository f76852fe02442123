"""Fault injection: make a LOCAL site behave like a suspended or broken provider, for drills and tests.

``apply(mode)`` stops the site's real services (their data is kept) and, for some modes, puts
stand-ins on the site's address, on every port its services expose (public and health-check ports):

- ``suspended``: what a real cloud does to a suspended account: its VMs stop (nothing listens, so
  connections are refused) and its API refuses every call: the local "provider control plane"
  (``.deplat/local/<site>/provider.json``) says ``suspended``. No cloud answers HTTP 403 pages from
  a suspended account's VMs, so neither does this; detection tells ``suspended`` from ``down`` by
  the control-plane check, as it must on a real provider;
- ``refused``: nothing listens (connections are refused), the control plane is fine;
- ``blackhole``: connections are accepted and never answered (clients see read timeouts);
- ``slow``: the answer is a 200, but only after ``slow_delay`` seconds (longer than any probe's
  timeout).

Every mode change (and ``clear``) closes every connection the stand-ins hold, so no client keeps
the old answer over a kept-alive connection. ``clear()`` stops the stand-ins, marks the provider
active again and (by default) starts the site's real services again with the driver's ``up``.

How the real services are stopped: with the site driver's ``destroy`` when ``deplat.local.driver``
is there (a local site's ``destroy`` stops the supervisor and its services and keeps
``data/``), otherwise directly — SIGTERM to the site's supervisor (recorded in its locked pid file),
which stops its services, then SIGTERM/SIGKILL to any recorded service process still alive. Data
dirs are never touched either way.

Stand-ins run in this process (threads); they stop with ``clear()`` or when the process exits. A
``provider.json`` left behind by a killed drill is removed by the next ``clear()``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from deplat.errors import InputError, OperationFailed

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

Mode = Literal["suspended", "refused", "blackhole", "slow"]
MODES: tuple[str, ...] = get_args(Mode)
LISTENING = ("blackhole", "slow")  # modes with stand-ins on the site's ports
MAX_HELD = 256  # connections a blackhole holds at once; the oldest is dropped beyond that
MAX_WORKERS = 64  # connections answered at once by a slow stand-in
BIND_WAIT = 5.0  # seconds to wait for a stopped service to release its port


# --- the stand-ins -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a mode change is seen at once
    timeout = 5.0  # seconds to read a request
    server: Any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        stand_in: StandIn = self.server
        if stand_in.stopping.wait(stand_in.slow_delay):  # slow: the real answer, too late
            return
        self._send(200, b'{"ok": true, "slow": true}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _answer  # noqa: N815


class StandIn:
    """One listening port in one mode: an accept loop in a thread, every connection tracked."""

    def __init__(self, address: str, port: int, mode: str, slow_delay: float) -> None:
        self.address, self.port, self.mode, self.slow_delay = address, port, mode, slow_delay
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self._workers: set[threading.Thread] = set()
        self._listener = _bind(address, port)
        self._listener.setblocking(False)
        self._thread = threading.Thread(target=self._loop, name=f"fault-{mode}-{port}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            while not self.stopping.is_set():
                if not sel.select(timeout=0.05):
                    continue
                try:
                    conn, peer = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return  # the listener was closed
                conn.setblocking(True)
                self._take(conn, peer)

    def _take(self, conn: socket.socket, peer: Any) -> None:
        with self._lock:
            self._held.append(conn)
            if self.mode == "blackhole":
                if len(self._held) > MAX_HELD:
                    _cut(self._held.pop(0))
                return
            self._workers = {t for t in self._workers if t.is_alive()}
            if len(self._workers) >= MAX_WORKERS:
                self._held.remove(conn)
                _cut(conn)
                return
            worker = threading.Thread(target=self._serve, args=(conn, peer), daemon=True)
            self._workers.add(worker)
        worker.start()

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        try:
            _Handler(conn, peer, cast(Any, self))
        except OSError:
            pass  # the client went away, or stop() cut the connection
        finally:
            with self._lock:
                if conn in self._held:
                    self._held.remove(conn)
            _cut(conn)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, cut every held connection, and wait (bounded) for the threads."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)  # the accept loop notices within one select tick
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            held, self._held = self._held, []
            workers = list(self._workers)
        for conn in held:
            _cut(conn)
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))


def _cut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()


def _bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    deadline = time.monotonic() + BIND_WAIT
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            sock.listen(128)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise OperationFailed(f"cannot listen on {address}:{port} to inject a fault: {exc}") from None
            time.sleep(0.05)


# --- the injector ------------------------------------------------------------------------------


class FaultInjector:
    """Makes one local site misbehave; use as a context manager so it always ends with ``clear()``."""

    def __init__(
        self,
        spec: Spec,
        site: Site | str,
        secrets: SecretStore | None = None,
        *,
        slow_delay: float | None = None,
        restart_on_clear: bool = True,
    ) -> None:
        from deplat.providers import local

        self.spec = spec
        self.site = spec.site(site) if isinstance(site, str) else site
        from deplat.providers import provider_of

        if not provider_of(self.site).capabilities.runs_locally:
            raise InputError(
                f"site '{self.site.name}' is a {self.site.provider.value} site: faults can only be "
                "injected into local sites",
                hint="run the drill on a spec whose sites are local (see examples/guestbook)",
            )
        self.secrets = secrets
        self.address = local.address(self.site, spec)
        self.ports = sorted(
            {p.port for svc in spec.services.values() for p in svc.ports if p.protocol == "tcp" and p.public}
            | {svc.health.port for svc in spec.services.values() if svc.health is not None}
        )
        longest = max(
            [spec.failover.timeout, *(s.health.timeout for s in spec.services.values() if s.health)]
        )
        self.slow_delay = slow_delay if slow_delay is not None else 2 * longest + 1
        self.restart_on_clear = restart_on_clear
        self.mode: str | None = None
        self.applied_at: float | None = None
        self._stand_ins: list[StandIn] = []
        self._stopped_services = False

    # -- public ------------------------------------------------------------------------------

    def apply(self, mode: Mode) -> None:
        """Switch the site to ``mode`` (from healthy or from another mode)."""
        if mode not in MODES:
            raise InputError(f"unknown fault mode '{mode}'; known: {', '.join(MODES)}")
        self._stop_stand_ins()
        if not self._stopped_services:
            self._stop_services()
            self._stopped_services = True
        self._set_provider_state("suspended" if mode == "suspended" else None)
        if mode in LISTENING:
            try:
                for port in self.ports:
                    self._stand_ins.append(StandIn(self.address, port, mode, self.slow_delay))
            except BaseException:
                self._stop_stand_ins()
                raise
        self.mode = mode
        self.applied_at = time.time()

    def clear(self, *, restart: bool | None = None) -> None:
        """Stop the stand-ins, mark the provider active, and start the real services again."""
        self._stop_stand_ins()
        self._set_provider_state(None)
        restart = self.restart_on_clear if restart is None else restart
        if restart and self._stopped_services:
            self._start_services()
        self._stopped_services = False
        self.mode = None
        self.applied_at = None

    def __enter__(self) -> FaultInjector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site.name,
            "address": self.address,
            "ports": self.ports,
            "mode": self.mode,
            "applied_at": self.applied_at,
            "slow_delay": self.slow_delay,
        }

    # -- the pieces --------------------------------------------------------------------------

    def _stop_stand_ins(self) -> None:
        stand_ins, self._stand_ins = self._stand_ins, []
        for stand_in in stand_ins:
            stand_in.stop()

    def _set_provider_state(self, state: str | None) -> None:
        from deplat.files import write_json_atomic
        from deplat.providers.local import provider_state_path

        path = provider_state_path(self.spec, self.site.name)
        if state is None:
            path.unlink(missing_ok=True)
        else:
            write_json_atomic(path, {"state": state, "since": time.time(), "by": "deplat fault injector"})

    def _driver(self) -> Any | None:
        try:
            import deplat.local.driver  # noqa: F401 - only to know whether it is there
        except ModuleNotFoundError:
            return None
        from deplat.secrets import SecretStore
        from deplat.sites import driver_for

        return driver_for(self.spec, self.site, self.secrets or SecretStore(self.spec))

    def _stop_services(self) -> None:
        driver = self._driver()
        if driver is not None:
            result = driver.destroy(self.site)
            if not result.ok:
                raise OperationFailed(f"could not stop site '{self.site.name}': {result.error}")
            return
        self._stop_supervisor_directly()

    def _stop_supervisor_directly(self, timeout: float = 10.0) -> None:
        from deplat.local import sitestate
        from deplat.paths import local_site_dir

        site_dir = local_site_dir(self.spec, self.site.name)
        pid = sitestate.supervisor_pid(site_dir)
        if pid and pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and sitestate.supervisor_pid(site_dir) is not None:
                time.sleep(0.05)
        state = sitestate.read_state(site_dir)
        if state:
            sitestate.stop_leftovers(state)

    def _start_services(self) -> None:
        driver = self._driver()
        if driver is None:
            return  # nothing to start with: the local engine is not installed
        result = driver.up(self.site)
        if not result.ok:
            raise OperationFailed(f"could not start site '{self.site.name}' again: {result.error}")


def provider_state(spec: Spec, site: str) -> dict[str, Any]:
    """What the local "provider control plane" says about ``site`` (``{"state": "active"}`` by default)."""
    from deplat.providers.local import provider_state_path

    try:
        return dict(json.loads(provider_state_path(spec, site).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return {"state": "active"}


def clear_leftovers(spec: Spec) -> list[str]:
    """Mark every local site's provider active again; returns the sites that were not.

    A drill killed mid-way (``kill -9``) leaves its stand-ins gone with it but ``provider.json``
    behind, and the site would look suspended for good: a drill calls this before it starts.
    """
    from deplat.providers import provider_of
    from deplat.providers.local import provider_state_path

    cleared = []
    for site in spec.sites:
        if not provider_of(site).capabilities.runs_locally:
            continue
        path = provider_state_path(spec, site.name)
        if path.exists():
            path.unlink(missing_ok=True)
            cleared.append(site.name)
    return cleared
