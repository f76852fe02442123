"""Probes: is a site serving, from deplat's vantage point? Healthy, degraded, down or suspended.

A probe runs every service's health check (``spec.services[..].health``, see
``deplat.failover.health_checks``) at the site's address, all at once, together with the provider's
control-plane check (``deplat.failover.control_plane``).

Classification of one site:
- suspended: an answer matches the provider's ``SUSPENSION_SIGNATURES`` (``(status or None, body
  regex)`` in ``deplat.providers.<provider>``, see ``deplat.failover.signatures``), or the control
  plane says the account is suspended;
- healthy: every check answered the expected status (a control plane that fails for another
  reason, e.g. a transient API error, lowers this to degraded: it is reported, not a failure);
- degraded: some checks failed; down: all failed (or the site has no address).

Signatures are matched only against answers that failed their check: a check that passes is a pass.
The probe's ``timeout`` caps each check's own ``health.timeout``.

The verify step's probe of the app's names is ``deplat.failover.names_probe``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from deplat.failover import control_plane as control_plane_mod
from deplat.failover.health_checks import Check, Health, checks_at
from deplat.failover.names_probe import resolve_names
from deplat.failover.signatures import signatures_for
from deplat.failover.sync import run_sync

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.sites import Addresses
    from deplat.spec.model import Site, Spec

# Callers import these from here: a site probe's parts and the sync runner.
__all__ = [
    "Check",
    "Health",
    "SiteProbe",
    "classify",
    "probe_site",
    "probe_site_sync",
    "resolve_names",
    "run_sync",
]


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
        return await checks_at(spec, [(address, host)], timeout, signatures)

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
