"""The failover's steps, as typed objects run in order by ``deplat.failover.run``.

    decide         who leaves, who takes over, why; refuse an unready or fenced target unless forced
    ensure_target  a warm target is checked with a probe; a cold one is stood up (its driver's up)
    certificate    the target serves deplat's certificate for the app's names (installed if not)
    final_backup   planned (the old site answers healthy): its writes stop and its data is backed up
    restore        the newest backup of each stateful service goes onto the target (RPO recorded)
    switch         the traffic switch, compare-and-swap: DNS on every provider, or the front door
    verify         the target answers healthy and all traffic goes to it
    fence          the old site is fenced in the active set and its state archived

Each step returns a JSON-able dict, journaled as the step's result. A step is skipped on a resume
when its journaled result is ``settled``: a ``partial`` switch is not, so a resume runs the switch
(compare-and-swap: providers already moved say ``already``) and the verify again.

The old site: no step calls its provider; its driver only in ``final_backup`` (a planned move, the
old site having just answered healthy) and for ``archive_state`` (local files). Its addresses come
from the address book (``deplat.failover.addresses``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from deplat.errors import DeplatError, OperationFailed
from deplat.events import Emit
from deplat.failover import addresses as book
from deplat.failover import data
from deplat.failover.archive import archive_site_state
from deplat.failover.journal import Journal
from deplat.failover.traffic import TrafficSwitch
from deplat.files import exclusive_lock
from deplat.paths import paths
from deplat.sites import Addresses
from deplat.spec.model import Site, Spec
from deplat.state import load_active, record_failover

if TYPE_CHECKING:
    from deplat.failover.probe import SiteProbe
    from deplat.secrets import SecretStore
    from deplat.sites import SiteDriver

DriverFactory = Callable[[Site], "SiteDriver"]


class Refused(Exception):
    """The failover must not go on: nothing was changed."""


class Conflict(Exception):
    """Another failover switched traffic elsewhere first: adopt its result."""


@dataclass
class Failover:
    """What every step works with: the move (from the journal's ``begin``) and the means."""

    spec: Spec
    secrets: SecretStore
    journal: Journal
    emit: Emit
    drivers: DriverFactory
    traffic: TrafficSwitch
    wait: float  # how long the target may take to become healthy
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def old(self) -> str:
        return str(self.journal.begin["from"])

    @property
    def new(self) -> str:
        return str(self.journal.begin["to"])

    @property
    def force(self) -> bool:
        return bool(self.journal.begin.get("force"))

    @property
    def reason(self) -> str:
        return str(self.journal.begin.get("reason", "operator"))

    @property
    def reference_time(self) -> float:
        begin = self.journal.begin
        return float(begin.get("reference_time") or begin.get("requested_at") or time.time())

    @property
    def timeout(self) -> float:
        return self.spec.failover.timeout

    def target_addresses(self) -> Addresses:
        return book.from_dict(self.results["ensure_target"]["addresses"]) or Addresses()

    def probe(self, site: str, addresses: Addresses) -> SiteProbe:
        from deplat.failover.probe import probe_site_sync

        return probe_site_sync(
            self.spec, site, addresses, timeout=self.timeout, secrets=self.secrets, control_plane=True
        )

    def wait_healthy(self, site: str, addresses: Addresses) -> SiteProbe:
        """Probe until healthy or ``wait`` seconds pass; returns the last probe."""
        deadline = time.monotonic() + self.wait
        while True:
            probe = self.probe(site, addresses)
            if probe.health.value == "healthy" or time.monotonic() >= deadline:
                return probe
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


class Step(ABC):
    name: ClassVar[str]

    @abstractmethod
    def run(self, f: Failover) -> dict[str, Any]: ...

    def settled(self, result: dict[str, Any]) -> bool:
        """Is this journaled result final (a resume skips the step)?"""
        return True


class Decide(Step):
    name = "decide"

    def run(self, f: Failover) -> dict[str, Any]:
        spec, active = f.spec, load_active(f.spec)
        role = active.role_of(spec, f.new)
        if role == "fenced" and not f.force:
            raise Refused(
                f"site {f.new} is fenced (it was left by an earlier failover): `deplat rejoin {f.new}` first"
            )
        decision: dict[str, Any] = {
            "from": f.old,
            "to": f.new,
            "reason": f.reason,
            "target_role": role,
            "old_addresses": book.to_dict(book.known_addresses(spec, f.old)),
            "current_primary": active.primary,
        }
        if active.primary == f.new:
            decision["note"] = f"{f.new} is already the primary"
        if role == "cold":
            decision["target_health"] = "cold"
            return decision
        target = spec.site(f.new)
        probe = f.probe(f.new, f.drivers(target).addresses(target))
        decision["target_health"] = probe.health.value
        decision["target_reason"] = probe.reason
        if probe.health.value != "healthy":
            if not f.force:
                raise Refused(
                    f"target {f.new} is not ready ({probe.health.value}: {probe.reason or 'no detail'})"
                )
            decision["forced"] = True
        return decision


class EnsureTarget(Step):
    name = "ensure_target"

    def run(self, f: Failover) -> dict[str, Any]:
        target = f.spec.site(f.new)
        driver = f.drivers(target)
        stood_up = False
        if f.results["decide"].get("target_health") == "cold":
            outcome = driver.up(target, f.emit)
            stood_up = True
            if not outcome.ok and not f.force:
                raise OperationFailed(
                    f"could not stand up the cold site {f.new}: {outcome.error or 'unknown error'}",
                    hint="fix the cause and run `deplat failover --resume`, or fail over to another site",
                )
        addresses = driver.addresses(target)
        probe = f.wait_healthy(f.new, addresses)
        if probe.health.value != "healthy" and not f.force:
            raise OperationFailed(
                f"target {f.new} is not healthy ({probe.health.value}: {probe.reason})",
                hint="`deplat failover --resume` retries; --force goes on anyway",
            )
        book.remember_addresses(f.spec, f.new, addresses)
        return {"addresses": book.to_dict(addresses), "stood_up": stood_up, "health": probe.health.value}


class Certificate(Step):
    """Before the old site's writes stop and traffic moves: the target serves deplat's certificate
    for every app name (``deplat.certs.deploy.before_traffic``); skipped, with a note, for a site
    without a VM or when deplat holds no certificate."""

    name = "certificate"

    def run(self, f: Failover) -> dict[str, Any]:
        from deplat.certs.deploy import before_traffic

        target = f.spec.site(f.new)
        return before_traffic(f.spec, target, f.secrets, f.drivers(target), force=f.force)


FINAL_BACKUP_STOPPING = "final_backup: stopping the old site's stateful services"


class FinalBackup(Step):
    """Planned (the old site answers healthy): its stateful services are stopped, so no write is
    acknowledged any more, and their data is backed up: nothing is lost. Unplanned (the old site is
    down or suspended, or was lost before the failover began, e.g. the watcher's decision): skipped,
    and the newest periodic backup is accepted (its age is the RPO, reported as such). The one step
    that may call the old site's driver, and only after it has just answered healthy."""

    name = "final_backup"

    def run(self, f: Failover) -> dict[str, Any]:
        stateful = [name for name, svc in f.spec.services.items() if svc.stateful]
        if not stateful:
            return {"planned": False, "note": "no stateful service"}
        begin = f.journal.begin
        if float(begin.get("reference_time") or 0) < float(begin.get("requested_at") or 0):
            return {"planned": False, "note": f"{f.old} was lost before the failover began"}
        closed = [s for s in (f.old, f.new) if data.ssh_closed(f.spec, s)]
        if closed:
            return {
                "planned": False,
                "note": f"SSH is closed on {', '.join(closed)} (no options.ssh_cidrs): no final backup can "
                "move over it; the newest periodic backup is restored",
            }
        old = f.spec.site(f.old)
        stopping_before = any(
            r.get("kind") == "note" and r.get("message") == FINAL_BACKUP_STOPPING for r in f.journal.records
        )
        # resumed after this step stopped the old site's services: it no longer answers healthy,
        # but it is still planned (its data is complete and waits for its final backup)
        if not stopping_before:
            addresses = book.known_addresses(f.spec, f.old)
            probe = f.probe(f.old, addresses) if addresses else None
            if probe is None or probe.health.value != "healthy":
                why = "its address is unknown" if probe is None else f"{probe.health.value} ({probe.reason})"
                return {"planned": False, "note": f"{f.old}: {why}: the newest periodic backup is restored"}
        driver = f.drivers(old)
        f.journal.note(FINAL_BACKUP_STOPPING, {"site": f.old, "services": stateful})
        # its timers first: a periodic backup (and its prune's lock) must not race the final one
        timers = data.backup_timers(f.spec, f.old, False, secrets=f.secrets, driver=driver)
        stopped = driver.stop(old, stateful, f.wait)
        missing = [n for n in stateful if n not in stopped]
        try:
            if missing:
                raise OperationFailed(f"could not stop {', '.join(missing)} on {f.old}")
            backups = data.back_up(f.spec, f.old, f.emit, secrets=f.secrets, driver=driver)
        except Exception:
            # writes must not stay stopped where traffic still goes, nor its backups
            driver.restart(old, stateful, f.wait)
            data.backup_timers(f.spec, f.old, True, secrets=f.secrets, driver=driver)
            raise
        return {
            "planned": True,
            "stopped": stopped,
            "backups": backups,
            "timers_off": timers.get("timers", []),
            "note": f"{f.old}'s writes stopped and its data backed up: nothing acknowledged is lost",
        }


class Restore(Step):
    name = "restore"

    def run(self, f: Failover) -> dict[str, Any]:
        if not data.has_data(f.spec):
            return {"restored": [], "rpo_seconds": None, "note": "no stateful service"}
        if data.ssh_closed(f.spec, f.new):  # a cold cloud site (check_target refused a warm one)
            return {
                "restored": [],
                "rpo_seconds": None,
                "note": f"{f.new} restored the newest snapshot at its first boot; its port 22 is closed "
                "(no options.ssh_cidrs), so nothing newer can be restored onto it",
            }
        target = f.spec.site(f.new)
        items = data.restore(
            f.spec,
            f.new,
            reference_time=f.reference_time,
            emit=f.emit,
            secrets=f.secrets,
            driver=f.drivers(target),
            timeout=f.wait,
        )
        if f.results.get("final_backup", {}).get("planned"):
            for item in items:  # the final backup holds every acknowledged write
                if item.get("backup_id"):
                    item["rpo_seconds"] = 0.0
        rpos = [r["rpo_seconds"] for r in items if r.get("rpo_seconds") is not None]
        # The target's services run (warm, or just stood up): restart the ones whose data was
        # replaced and that were not started on it already (a cloud site's restore does that),
        # so that they load it rather than what they held in memory.
        services = [r["service"] for r in items if r.get("backup_id") and not r.get("started")]
        restarted = _restart(f, services) if services else []
        probe = f.wait_healthy(f.new, f.target_addresses())
        return {
            "restored": items,
            "rpo_seconds": max(rpos) if rpos else None,
            "restarted": restarted,
            "health": probe.health.value,
        }


def _restart(f: Failover, services: list[str]) -> list[str]:
    target = f.spec.site(f.new)
    return f.drivers(target).restart(target, services, f.wait)


def _timers(f: Failover, site: str, on: bool) -> dict[str, Any]:
    """Best effort: the new primary's backup timers on, the old one's off (a suspended or gone
    site does not answer; the error is recorded)."""
    try:
        return data.backup_timers(f.spec, site, on, secrets=f.secrets, driver=f.drivers(f.spec.site(site)))
    except Exception as exc:
        message = exc.message if isinstance(exc, DeplatError) else f"{type(exc).__name__}: {exc}"
        return {"site": site, "on": on, "error": f.secrets.masker.text(message)[:300]}


class Switch(Step):
    name = "switch"

    def run(self, f: Failover) -> dict[str, Any]:
        old = book.from_dict(f.results["decide"].get("old_addresses"))
        result = f.traffic.switch(f.old, old, f.new, f.target_addresses())
        if result.outcome == "conflict":
            raise Conflict(result.message)
        return result.to_dict()

    def settled(self, result: dict[str, Any]) -> bool:
        return not result.get("partial")


class Verify(Step):
    name = "verify"

    def run(self, f: Failover) -> dict[str, Any]:
        addresses = f.target_addresses()
        partial = bool(f.results["switch"].get("partial"))
        deadline = time.monotonic() + f.wait
        attempts = 0
        while True:
            attempts += 1
            probe = f.probe(f.new, addresses)
            check = f.traffic.verify(f.new, addresses)
            target_ok = probe.health.value == "healthy"
            # a partial switch will not heal while we wait: only wait for the target itself
            if (target_ok and (check.serving or partial)) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        result: dict[str, Any] = {
            "via": check.via,
            "healthy": target_ok and check.serving,
            "target_health": probe.health.value,
            "left_behind": check.left_behind,
            "attempts": attempts,
            "traffic": check.detail,
        }
        if result["healthy"]:
            result["first_healthy_at"] = time.time()
        return result

    def settled(self, result: dict[str, Any]) -> bool:
        return not result.get("left_behind")


class Fence(Step):
    name = "fence"

    def run(self, f: Failover) -> dict[str, Any]:
        with exclusive_lock(paths(f.spec).active_lock):
            active = load_active(f.spec)
            recorded = not (active.primary == f.new and f.old in active.fenced)
            if recorded:
                record_failover(f.spec, f.old, f.new, f.reason)
        try:  # the old site's driver reads local files or the state backend only, never its provider
            old = f.drivers(f.spec.site(f.old))
            archive = archive_site_state(f.spec, f.old, f.journal.id, f.secrets, old)
        except Exception as exc:  # best effort: traffic and data have moved already
            archive = {"error": f.secrets.masker.text(f"{type(exc).__name__}: {exc}")[:300]}
        timers = {"new": _timers(f, f.new, True), "old": _timers(f, f.old, False)}
        try:  # best effort too: an old primary that comes back then backs nothing up
            lease = data.grant_lease(f.spec, f.new, secrets=f.secrets)
        except Exception as exc:
            message = exc.message if isinstance(exc, DeplatError) else f"{type(exc).__name__}: {exc}"
            lease = {"site": f.new, "error": f.secrets.masker.text(message)[:300]}
        return {
            "fenced": f.old,
            "primary": f.new,
            "recorded": recorded,
            "archive": archive,
            "timers": timers,
            "lease": lease,
        }


#: The steps in order.
PIPELINE: tuple[Step, ...] = (
    Decide(),
    EnsureTarget(),
    Certificate(),
    FinalBackup(),
    Restore(),
    Switch(),
    Verify(),
    Fence(),
)
STEPS: tuple[str, ...] = tuple(step.name for step in PIPELINE)
