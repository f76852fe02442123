"""Probes: is a site serving, from deplat's vantage point? Healthy, degraded, down or suspended.

A probe runs every service's health check (``spec.services[..].health``) over HTTP, addressed by
IP (never through the system resolver; the ``Host`` header carries the app's first name), all at
once, together with the provider's control-plane check (``deplat.failover.control_plane``).

Classification of one site:
- suspended: an answer matches the provider's ``SUSPENSION_SIGNATURES`` (``(status or None, body
  regex)`` in ``deplat.providers.<provider>``), or the control plane says the account is suspended;
- healthy: every check answered the expected status (a control plane that fails for another
  reason, e.g. a transient API error, lowers this to degraded: it is reported, not a failure);
- degraded: some checks failed; down: all failed (or the site has no address).

Signatures are matched only against answers that failed their check: a check that passes is a pass.
The probe's ``timeout`` caps each check's own ``health.timeout``; each check is bounded in total
time (connect + send + the whole answer), so a server that answers slowly is a "timeout" too.

``probe_names`` is the verify step's probe: the app's names resolved through an explicit
nameserver (or a given mapping), then the same checks against every address they resolve to.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from deplat.failover import control_plane as control_plane_mod

if TYPE_CHECKING:
    import httpx

    from deplat.secrets import SecretStore
    from deplat.sites import Addresses
    from deplat.spec.model import Site, Spec

BODY_LIMIT = 64 * 1024  # bytes of an answer kept for signature matching
T = TypeVar("T")


class Health(StrEnum):
    healthy = "healthy"
    degraded = "degraded"
    down = "down"
    suspended = "suspended"


@dataclass
class Check:
    """One health check of one service at one address."""

    service: str
    url: str
    ok: bool
    status: int | None = None
    latency: float = 0.0  # seconds
    error: str | None = None
    error_class: str | None = None  # refused | timeout | reset | unreachable | http | suspended | no_address
    address: str = ""
    host: str = ""


@dataclass
class SiteProbe:
    site: str
    health: Health
    checks: list[Check]
    control_plane: tuple[bool, str] | None
    at: float  # wall-clock time the probe started
    seconds: float  # how long it took
    control_plane_class: str | None = None  # the control plane's error class when it failed
    attempts: int = 1  # probes of this site in its cycle (a failed one is asked again)

    @property
    def reason(self) -> str:
        """One line saying why the site is not healthy ("" when it is)."""
        if self.health is Health.healthy:
            return ""
        parts = [f"{c.service}: {c.error}" for c in self.checks if not c.ok]
        if self.control_plane and not self.control_plane[0]:
            parts.append(f"control plane: {self.control_plane[1]}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["health"] = self.health.value
        data["reason"] = self.reason
        return data


@dataclass
class NamesProbe:
    """The app's names as the world resolves them, and whether the addresses they give serve."""

    health: Health
    names: dict[str, list[str]]  # name -> addresses it resolved to
    errors: dict[str, str]  # name -> why it did not resolve
    checks: list[Check]
    healthy: list[str]  # addresses whose every check passed
    at: float
    seconds: float

    def serves_only(self, addresses: Iterable[str]) -> bool:
        """Every name resolves, only to ``addresses``, and each address it resolves to is healthy."""
        allowed = set(addresses)
        return bool(self.names) and all(
            addrs and set(addrs) <= allowed and set(addrs) <= set(self.healthy)
            for addrs in self.names.values()
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["health"] = self.health.value
        return data


# --- suspension signatures ---------------------------------------------------------------------

Signature = tuple[int | None, re.Pattern[str]]


def signatures_for(provider: str) -> list[Signature]:
    """The provider's suspension signatures, compiled (case-insensitive); [] when it has none."""
    try:
        module = importlib.import_module(f"deplat.providers.{provider}")
    except ModuleNotFoundError:
        return []
    table = getattr(module, "SUSPENSION_SIGNATURES", None) or []
    return [(status, re.compile(pattern, re.IGNORECASE)) for status, pattern in table]


def all_signatures() -> list[Signature]:
    from deplat.providers import PROVIDERS

    return [sig for name in PROVIDERS for sig in signatures_for(name)]


def is_suspension(status: int | None, body: str, signatures: Iterable[Signature]) -> bool:
    return any((want is None or want == status) and rx.search(body) for want, rx in signatures)


# --- one check ---------------------------------------------------------------------------------


def _url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def _error_class(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError):
                return "refused"
            cause = cause.__cause__ or cause.__context__
        return "refused" if "refused" in str(exc).lower() else "unreachable"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "reset"
    return "error"


async def _check(
    client: httpx.AsyncClient,
    service: str,
    address: str,
    host: str,
    port: int,
    path: str,
    expect: int,
    timeout: float,
    signatures: list[Signature],
) -> Check:
    url = _url(address, port, path)
    start = time.monotonic()
    status: int | None = None
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, headers={"Host": host}, timeout=timeout) as answer:
                status = answer.status_code
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) >= BODY_LIMIT:
                        break
    except Exception as exc:  # every failure shape becomes a classified, failed check
        kind = _error_class(exc)
        message = str(exc) or type(exc).__name__
        if kind == "timeout":
            message = f"no answer in {timeout:g}s"
        elif kind == "refused":
            message = "connection refused"
        elif kind == "reset":
            message = f"connection closed without an answer ({message})"
        return Check(service, url, False, status, time.monotonic() - start, message, kind, address, host)
    latency = time.monotonic() - start
    if status == expect:
        return Check(service, url, True, status, latency, None, None, address, host)
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    if is_suspension(status, text, signatures):
        error = f"HTTP {status}: suspension page ({text.strip()[:80]})"
        return Check(service, url, False, status, latency, error, "suspended", address, host)
    error = f"HTTP {status}, expected {expect}"
    return Check(service, url, False, status, latency, error, "http", address, host)


def _client(limit: int) -> httpx.AsyncClient:
    import httpx

    # trust_env=False: no proxies or netrc from the environment; no keep-alive between probes.
    # Probes speak plain http:// to an IP, so TLS settings never apply: verify=False only spares
    # loading the CA bundle (~18 ms) for every probe.
    return httpx.AsyncClient(
        trust_env=False,
        verify=False,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max(limit, 1), max_keepalive_connections=0),
    )


async def _checks_at(
    spec: Spec, targets: list[tuple[str, str]], timeout: float, signatures: list[Signature]
) -> list[Check]:
    """Every service's health check at every (address, host) target, concurrently."""
    jobs = []
    services = [(name, svc.health) for name, svc in spec.services.items() if svc.health is not None]
    async with _client(len(services) * len(targets)) as client:
        for address, host in targets:
            for name, health in services:
                assert health is not None
                limit = min(timeout, health.timeout)
                jobs.append(
                    _check(
                        client,
                        name,
                        address,
                        host,
                        health.port,
                        health.path,
                        health.expect,
                        limit,
                        signatures,
                    )
                )
        return list(await asyncio.gather(*jobs))


# --- classification ----------------------------------------------------------------------------


def classify(checks: list[Check], control_plane: tuple[bool, str, str | None] | None) -> Health:
    if control_plane is not None and control_plane[2] == "suspended":
        return Health.suspended
    if any(c.error_class == "suspended" for c in checks):
        return Health.suspended
    passed = sum(1 for c in checks if c.ok)
    if checks and passed == 0:
        return Health.down
    if passed < len(checks):
        return Health.degraded
    if control_plane is not None and not control_plane[0]:
        return Health.degraded
    return Health.healthy


# --- probes ------------------------------------------------------------------------------------


async def probe_site(
    spec: Spec,
    site: Site | str,
    addresses: Addresses,
    *,
    timeout: float,
    secrets: SecretStore | None,
    control_plane: bool = True,
) -> SiteProbe:
    """Probe one site at its address (the first IPv4, else the first IPv6) and classify it."""
    site_obj = spec.site(site) if isinstance(site, str) else site
    at, start = time.time(), time.monotonic()
    found = addresses.ipv4 or addresses.ipv6
    address = found[0] if found else None
    host = spec.domain.names[0]
    signatures = signatures_for(site_obj.provider.value)

    async def checks() -> list[Check]:
        if address is None:
            return [
                Check(name, "", False, error="the site has no address", error_class="no_address", host=host)
                for name, svc in spec.services.items()
                if svc.health is not None
            ]
        return await _checks_at(spec, [(address, host)], timeout, signatures)

    async def plane() -> tuple[bool, str, str | None] | None:
        if not control_plane:
            return None
        return await asyncio.to_thread(control_plane_mod.check, spec, site_obj, secrets, timeout)

    results, cp = await asyncio.gather(checks(), plane())
    if address is None and not results:  # no health checks at all, and nowhere to look
        results = [Check("*", "", False, error="the site has no address", error_class="no_address")]
    return SiteProbe(
        site=site_obj.name,
        health=classify(results, cp),
        checks=results,
        control_plane=None if cp is None else (cp[0], cp[1]),
        at=at,
        seconds=time.monotonic() - start,
        control_plane_class=None if cp is None else cp[2],
    )


async def resolve_names(
    names: Iterable[str], resolver: tuple[str, int], *, timeout: float
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """A and AAAA records of each name, asked of ``resolver`` (ip, port) only."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    res = dns.asyncresolver.Resolver(configure=False)
    res.nameservers = [resolver[0]]
    res.port = resolver[1]
    res.timeout = timeout
    res.lifetime = timeout
    res.cache = None

    async def one(name: str) -> tuple[str, list[str], str | None]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await res.resolve(name, rdtype, raise_on_no_answer=False, search=False)
            except dns.resolver.NXDOMAIN:
                return name, [], "NXDOMAIN"
            except dns.resolver.NoNameservers as exc:
                return name, [], f"the nameserver refused or failed: {exc}"
            except dns.exception.Timeout:
                return name, [], f"no DNS answer in {timeout:g}s"
            found += [r.to_text() for r in answer.rrset] if answer.rrset is not None else []
        return name, found, None if found else "no address records"

    names_out: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for name, found, error in await asyncio.gather(*(one(n) for n in names)):
        names_out[name] = found
        if error:
            errors[name] = error
    return names_out, errors


async def probe_names(
    spec: Spec,
    resolver: tuple[str, int] | None,
    *,
    timeout: float,
    mapping: Mapping[str, list[str]] | None = None,
    names: list[str] | None = None,
) -> NamesProbe:
    """Resolve the app's names (through ``resolver``, or ``mapping`` when it is None) and check them.

    Each name's checks carry that name as ``Host``. Suspension signatures of every provider apply:
    the names are not tied to one site.
    """
    at, start = time.time(), time.monotonic()
    wanted = list(names or spec.domain.names)
    if resolver is not None:
        resolved, errors = await resolve_names(wanted, resolver, timeout=timeout)
    elif mapping is not None:
        resolved = {n: list(mapping.get(n, [])) for n in wanted}
        errors = {n: "not in the mapping" for n, addrs in resolved.items() if not addrs}
    else:
        raise ValueError("probe_names needs a resolver (ip, port) or a mapping")
    targets = [(address, name) for name, addrs in resolved.items() for address in addrs]
    checks = await _checks_at(spec, targets, timeout, all_signatures()) if targets else []
    addresses = list(dict.fromkeys(a for a, _ in targets))
    healthy = [a for a in addresses if all(c.ok for c in checks if c.address == a)]
    if any(c.error_class == "suspended" for c in checks):
        health = Health.suspended
    elif not checks or not any(c.ok for c in checks):
        health = Health.down
    elif errors or len(healthy) < len(addresses):
        health = Health.degraded
    else:
        health = Health.healthy
    return NamesProbe(health, resolved, errors, checks, healthy, at, time.monotonic() - start)


# --- for callers that are not async ------------------------------------------------------------


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private event loop that never becomes the thread's current
    loop (unlike ``asyncio.run``, which leaves the thread with none: code that later asks for the
    current loop, such as Pulumi's, would then fail). From inside a running loop, in a fresh thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future: Future[T] = pool.submit(run_sync, coro)
        return future.result()


def probe_site_sync(
    spec: Spec,
    site: Site | str,
    addresses: Addresses,
    *,
    timeout: float,
    secrets: SecretStore | None,
    control_plane: bool = True,
) -> SiteProbe:
    return run_sync(
        probe_site(spec, site, addresses, timeout=timeout, secrets=secrets, control_plane=control_plane)
    )


def probe_names_sync(
    spec: Spec,
    resolver: tuple[str, int] | None,
    *,
    timeout: float,
    mapping: Mapping[str, list[str]] | None = None,
    names: list[str] | None = None,
) -> NamesProbe:
    return run_sync(probe_names(spec, resolver, timeout=timeout, mapping=mapping, names=names))
