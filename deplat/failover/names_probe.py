"""The app's names as the world resolves them, and whether the addresses they give serve.

``probe_names`` is the verify step's probe: the app's names resolved through an explicit
nameserver (or a given mapping), then every service's health check against every address they
resolve to, each carrying its name as ``Host``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from deplat.failover.health_checks import Check, Health, checks_at
from deplat.failover.signatures import all_signatures
from deplat.failover.sync import run_sync

if TYPE_CHECKING:
    from deplat.spec.model import Spec


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
    checks = await checks_at(spec, targets, timeout, all_signatures()) if targets else []
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


def probe_names_sync(
    spec: Spec,
    resolver: tuple[str, int] | None,
    *,
    timeout: float,
    mapping: Mapping[str, list[str]] | None = None,
    names: list[str] | None = None,
) -> NamesProbe:
    return run_sync(probe_names(spec, resolver, timeout=timeout, mapping=mapping, names=names))
