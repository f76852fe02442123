"""``deplat rejoin SITE``: bring a fenced site back as a standby, its data re-synced from the primary.

A site is fenced when a failover leaves it; it is never trusted again until it rejoins (it may hold
writes the primary never saw, or be a false alarm's healthy victim). Rejoining, under the spec's
operation lock:

    backup   a fresh backup of the primary (through ``deplat.failover.data``)
    up       the site is stood up (a no-op when it runs)
    restore  that backup replaces the site's data; its stateful services restart on it; its backup
             timers stay off (a cloud standby never backs up)
    check    the site answers healthy
    unfence  the active set makes it a standby again (its spec role; a former primary is warm)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deplat import oplock
from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import data
from deplat.failover.probe import probe_site_sync
from deplat.providers import provider_of
from deplat.sites import driver_for
from deplat.spec.model import Spec
from deplat.state import load_active, record_rejoin

if TYPE_CHECKING:
    from deplat.secrets import SecretStore


@dataclass
class RejoinResult:
    site: str
    primary: str
    role: str = ""
    backed_up: list[dict[str, Any]] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    health: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rejoin(
    spec: Spec, secrets: SecretStore, site: str, *, emit: Emit = discard, wait: float = 15.0
) -> RejoinResult:
    names = [s.name for s in spec.sites]
    if site not in names:
        raise InputError(f"no site {site} in the spec", hint=f"sites: {', '.join(names)}")
    active = load_active(spec)
    if site not in active.fenced:
        raise InputError(f"{site} is not fenced ({active.role_of(spec, site)}): nothing to rejoin")
    data.check(spec)
    started = time.monotonic()
    result = RejoinResult(site, active.primary)

    def say(step: str, message: str, **more: Any) -> None:
        emit(Event(EventKind.REJOIN_STEP, message, site=site, data={"step": step, **more}))

    with oplock.hold(spec, "operation", f"deplat rejoin {site}", hint="wait for it to finish, then rejoin"):
        if data.has_data(spec):
            if provider_of(spec.site(active.primary)).capabilities.runs_locally:
                result.backed_up = data.back_up(spec, active.primary, emit)
                say("backup", f"backed up the primary {active.primary}", backups=len(result.backed_up))
            else:
                say(
                    "backup",
                    f"restoring the newest backup of {active.primary} (its data is backed up remotely)",
                )
        target = spec.site(site)
        driver = driver_for(spec, target, secrets)
        outcome = driver.up(target, emit)
        if not outcome.ok:
            raise OperationFailed(
                f"could not stand {site} up: {outcome.error}", hint="fix it and rejoin again"
            )
        say("up", f"{site} runs")
        if data.has_data(spec):
            result.restored = data.restore(
                spec,
                site,
                reference_time=time.time(),
                emit=emit,
                secrets=secrets,
                driver=driver,
                timeout=wait,
            )
            services = [r["service"] for r in result.restored if r.get("backup_id") and not r.get("started")]
            if services and set(driver.restart(target, services, wait)) != set(services):
                raise OperationFailed(f"{site}: its services did not restart on the restored data")
            say("restore", f"{site} holds the primary's data", services=services)
            # a standby never backs up: its stale data must not become the newest snapshot
            timers = data.backup_timers(spec, site, False, secrets=secrets, driver=driver)
            if timers["timers"]:
                say("timers", f"{site}'s backup timers are off", timers=timers["timers"])
        health = _wait_healthy(spec, secrets, site, driver.addresses(target), wait)
        result.health = health
        if health != "healthy":
            raise OperationFailed(
                f"{site} is {health} after the re-sync: it stays fenced", hint="see `deplat status`"
            )
        role = record_rejoin(spec, site).role_of(spec, site)
        result.role = role
        say("unfence", f"{site} is a {role} standby again", role=role)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _wait_healthy(spec: Spec, secrets: SecretStore, site: str, addresses: Any, wait: float) -> str:
    deadline = time.monotonic() + wait
    while True:
        probe = probe_site_sync(spec, site, addresses, timeout=spec.failover.timeout, secrets=secrets)
        if probe.health.value == "healthy" or time.monotonic() >= deadline:
            return probe.health.value
        time.sleep(0.2)
