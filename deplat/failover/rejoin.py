"""``deplat rejoin SITE``: bring a fenced site back as a standby, its data re-synced from the primary.

A site is fenced when a failover leaves it; it is never trusted again until it rejoins (it may hold
writes the primary never saw, or be a false alarm's healthy victim). Rejoining, under the spec's
operation lock:

    backup   a fresh backup of the primary, through ``deplat.failover.data.back_up`` (the planned
             failover's final backup uses it too): a local primary's folders here; a cloud
             primary's data by restic ON its VM over SSH, as the next snapshot of each service's
             sequence (``seq``), so it is the newest one and the one restored
    up       the site is stood up (a no-op when it runs)
    restore  the newest snapshot replaces the site's data; its stateful services restart on it; its
             backup timers stay off (a cloud standby never backs up)
    check    the site answers healthy
    unfence  the active set makes it a standby again (its spec role; a former primary is warm)

When no fresh backup can be taken (a cloud primary with port 22 closed, unreachable, or refusing the
app's key; a backup that failed) the rejoin stops before the site is touched (``OperationFailed``,
exit 1), unless ``accept_last_backup`` (``--accept-last-backup``): then the newest periodic snapshot
is restored, and writes made on the primary since it are missing on the site. The result's
``data_from`` says which it was: a fresh backup of the primary and when, or a periodic snapshot, which
one and how old.
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
from deplat.spec.model import Spec
from deplat.state import load_active, record_rejoin
from deplat.transport import HostKeyMismatch, KeyRefused

if TYPE_CHECKING:
    from deplat.secrets import SecretStore

ACCEPT_FLAG = "--accept-last-backup"


@dataclass
class RejoinResult:
    site: str
    primary: str
    role: str = ""
    # where the restored data came from: kind fresh|periodic|none, site, taken_at, snapshots, text;
    # periodic: age_seconds and why no fresh backup was taken
    data_from: dict[str, Any] = field(default_factory=dict)
    backed_up: list[dict[str, Any]] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    health: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rejoin(
    spec: Spec,
    secrets: SecretStore,
    site: str,
    *,
    emit: Emit = discard,
    wait: float = 15.0,
    accept_last_backup: bool = False,
) -> RejoinResult:
    from deplat.sites import driver_for

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
        no_fresh: str | None = None
        if data.has_data(spec):
            primary_driver = driver_for(spec, spec.site(active.primary), secrets)
            result.backed_up, no_fresh = _back_up_primary(
                spec, secrets, site, active.primary, primary_driver, emit, accept=accept_last_backup
            )
            if no_fresh is None:
                say("backup", f"backed up the primary {active.primary}", backups=len(result.backed_up))
            else:
                say(
                    "backup",
                    f"no fresh backup of the primary {active.primary} ({no_fresh}): its newest "
                    "periodic snapshot is restored",
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
            result.data_from = data_from(active.primary, result.backed_up, result.restored, no_fresh)
            services = [r["service"] for r in result.restored if r.get("backup_id") and not r.get("started")]
            if services and set(driver.restart(target, services, wait)) != set(services):
                raise OperationFailed(f"{site}: its services did not restart on the restored data")
            say("restore", f"{site} holds the primary's data: {result.data_from['text']}", services=services)
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


def _back_up_primary(
    spec: Spec, secrets: SecretStore, site: str, primary: str, driver: Any, emit: Emit, *, accept: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """The primary's fresh backup: ``(backups, None)``; ``([], why)`` when none could be taken and
    ``accept`` accepts the newest periodic snapshot instead; otherwise ``OperationFailed`` naming
    why and the way out, before anything on ``site`` is touched."""
    fix: str | None = None
    if data.ssh_closed(spec, primary):
        from deplat.remote import access

        why = "its port 22 is closed (no options.ssh_cidrs)"
        fix = access.fix(spec.site(primary))
    else:
        try:
            return data.back_up(spec, primary, emit, secrets=secrets, driver=driver), None
        except (OperationFailed, KeyRefused, HostKeyMismatch) as exc:  # unreachable, key refused, failed
            why, fix = exc.message, exc.hint
    if accept:
        return [], why
    fix = (fix or "Fix it").rstrip()
    raise OperationFailed(
        f"no fresh backup of the primary {primary} could be taken: {why}; nothing on {site} was changed",
        hint=f"{fix}{'' if fix.endswith(('.', '?')) else '.'} Then rejoin again; or "
        f"`deplat rejoin {site} {ACCEPT_FLAG}` restores the primary's newest periodic snapshot instead "
        f"(writes made on {primary} since it are then missing on {site})",
    )


def data_from(
    primary: str,
    backed_up: list[dict[str, Any]],
    restored: list[dict[str, Any]],
    no_fresh: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Where the restored data came from, for the result (see ``RejoinResult.data_from``)."""
    from deplat.data.freshness import age_text

    done = [r for r in restored if r.get("backup_id")]
    snapshots = {r["service"]: r["backup_id"] for r in done}
    ids = ", ".join(f"{service} {str(snap)[:8]}" for service, snap in snapshots.items())
    if not done:
        return {
            "kind": "none",
            "snapshots": {},
            "text": "no snapshot of the primary's data exists: none restored",
        }
    if backed_up and no_fresh is None:
        taken_at = min(float(b["taken_at"]) for b in backed_up)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(taken_at))
        return {
            "kind": "fresh",
            "site": primary,
            "taken_at": taken_at,
            "snapshots": snapshots,
            "text": f"fresh backup of {primary} at {when} ({ids})",
        }
    taken_at = min(float(r["taken_at"]) for r in done)
    age = max(0.0, (time.time() if now is None else now) - taken_at)
    sites = ", ".join(sorted({str(r.get("site")) for r in done}))
    return {
        "kind": "periodic",
        "site": sites,
        "taken_at": taken_at,
        "age_seconds": round(age, 3),
        "snapshots": snapshots,
        "why": no_fresh or f"{primary} had no data folder to back up",
        "text": f"periodic snapshot of {sites}, {age_text(age)} old ({ids})",
    }


def _wait_healthy(spec: Spec, secrets: SecretStore, site: str, addresses: Any, wait: float) -> str:
    deadline = time.monotonic() + wait
    while True:
        probe = probe_site_sync(spec, site, addresses, timeout=spec.failover.timeout, secrets=secrets)
        if probe.health.value == "healthy" or time.monotonic() >= deadline:
            return probe.health.value
        time.sleep(0.2)
