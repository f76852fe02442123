"""The users' side of a drill: a client that asks the app's health page the way users reach it.

Through the front door when the spec has no DNS, else by resolving the app's first name (through
the spec's nameserver, or through a caching resolver given to the drill, which honours the TTL as
users' resolvers do) and asking the address it gets. It asks every ``POLL`` seconds from the
suspension until the first healthy answer from another site, and counts what failed on the way:
that is the outage users saw.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from deplat.failover import frontdoor
from deplat.failover.addresses import known_addresses
from deplat.failover.drill.outcome import UsersView

if TYPE_CHECKING:
    from deplat.spec.model import Spec

POLL = 0.05  # seconds between the client's requests


class Client:
    def __init__(
        self,
        spec: Spec,
        old_site: str,
        timeout: float,
        resolver: tuple[str, int] | None = None,
        caching: bool = False,
    ) -> None:
        self.spec = spec
        self.old = old_site
        self.timeout = min(timeout, 1.0)
        self.resolver = resolver
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="drill-client", daemon=True)
        self.health = next((s.health for s in spec.services.values() if s.health is not None), None)
        self.sites_by_address: dict[str, str] = {}
        for site in spec.sites:
            found = known_addresses(spec, site.name)
            for address in [] if found is None else [*found.ipv4, *found.ipv6]:
                self.sites_by_address[address] = site.name
        if frontdoor.uses_front_door(spec):
            port = self.health.port if self.health is not None else frontdoor.front_door_ports(spec)[0]
            via = f"the front door (http://{frontdoor.front_door_address(spec)}:{port})"
        else:
            where = "?" if resolver is None else f"{resolver[0]}#{resolver[1]}"
            via = f"DNS through {'a caching resolver' if caching else 'the nameserver'} at {where}"
        self.view = UsersView(via=via, resolver_caches=caching)
        self.counting_from: float | None = None
        self.asked = threading.Event()  # set after the first answer (or failure)

    def count_from(self, at: float) -> None:
        """Count requests and failures from ``at`` (the suspension) on."""
        self.counting_from = at

    def start(self) -> Client:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def wait(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for the first healthy answer from another site."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.view.first_healthy_at is None and self.thread.is_alive():
            time.sleep(POLL)
        return self.view.first_healthy_at is not None

    def _loop(self) -> None:
        import httpx

        if self.health is None:
            return
        with httpx.Client(trust_env=False, timeout=self.timeout) as client:
            while not self.stopped.is_set():
                try:
                    site, problem = self._ask(client)
                except httpx.TimeoutException:
                    site, problem = None, "timeout"
                except httpx.ConnectError:
                    site, problem = None, "connection refused or failed"
                except (httpx.HTTPError, OSError, ValueError) as exc:
                    site, problem = None, type(exc).__name__
                now = time.time()
                self.asked.set()
                if self.counting_from is None or now < self.counting_from:
                    self.stopped.wait(POLL)
                    continue
                self.view.requests += 1
                if problem is not None:
                    self._failed(problem, now)
                elif site is not None and site != self.old:
                    self.view.first_healthy_at = now
                    self.view.first_healthy_site = site
                    return
                self.stopped.wait(POLL)

    def _failed(self, problem: str, at: float) -> None:
        view = self.view
        view.failed += 1
        view.failures[problem] = view.failures.get(problem, 0) + 1
        if view.first_failure_at is None:
            view.first_failure_at = at
        view.last_failure_at = at

    def _ask(self, client: Any) -> tuple[str | None, str | None]:
        """(the site that answered healthy, None) or (None, what went wrong)."""
        assert self.health is not None
        path, port, expect = self.health.path, self.health.port, self.health.expect
        if frontdoor.uses_front_door(self.spec):
            url = f"http://{frontdoor.front_door_address(self.spec)}:{port}{path}"
            answer = client.get(url, headers={"Connection": "close"})
            if answer.status_code != expect:
                return None, f"HTTP {answer.status_code}"
            return answer.headers.get(frontdoor.SITE_HEADER), None
        if self.resolver is None:
            return None, "no nameserver to ask"
        from deplat.failover.probe import resolve_names, run_sync

        name = self.spec.domain.names[0]
        names, errors = run_sync(resolve_names([name], self.resolver, timeout=self.timeout))
        addresses = names.get(name, [])
        if not addresses:
            return None, f"DNS: {errors.get(name, 'no address')}"
        address = addresses[0]
        host = f"[{address}]" if ":" in address else address
        answer = client.get(f"http://{host}:{port}{path}", headers={"Host": name, "Connection": "close"})
        if answer.status_code != expect:
            return None, f"HTTP {answer.status_code}"
        return self.sites_by_address.get(address, address), None
