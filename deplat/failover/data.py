"""The failover's one door to the app's data: back a site up, restore the newest backup onto a site,
switch a site's backup timers.

Everything in the failover, the watcher and ``deplat rejoin`` reaches backups through these few
functions. A local site's data is in a folder on this machine (``deplat.failover.backup``); a cloud
site's is on its VM, reached over SSH through its driver (``driver.remote(site)``, see
``deplat.remote.data``). Callers that hold a driver pass it (the failover's drivers, tests' too).

An RPO is the age of the restored data at the moment the old site was lost. It is never negative:
when a clock jump makes a backup look younger than the loss, the RPO is 0 and ``clock_skew`` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, discard
from deplat.spec.model import Spec

if TYPE_CHECKING:
    from deplat.remote import RemoteSite
    from deplat.secrets import SecretStore


def has_data(spec: Spec) -> bool:
    """Does any service keep state (something to back up and restore)?"""
    return any(svc.stateful for svc in spec.services.values())


def is_local(spec: Spec, site: str) -> bool:
    from deplat.providers import provider_of

    return provider_of(spec.site(site)).capabilities.runs_locally


def check(spec: Spec) -> None:
    """Raise ``InputError`` now if the backup store the spec names cannot be used (before anything
    is journaled or a watcher starts)."""
    if has_data(spec):
        from deplat.failover.backup import make_store

        make_store(spec)


def check_target(spec: Spec, site: str, role: str) -> None:
    """``InputError`` when the data cannot follow the app onto ``site`` (a cloud site with SSH
    closed that is not cold: nothing can restore its data while it runs)."""
    from deplat.remote import access

    target = spec.site(site)
    if has_data(spec) and access.is_cloud(target) and not access.ssh_open(target) and role != "cold":
        raise InputError(
            f"the data cannot follow the app onto {site}: it is a running ({role}) "
            f"{target.provider.value} site and its port 22 is closed (no options.ssh_cidrs)",
            hint=access.fix(target) + "; or fail over to a cold site (it restores at its first boot)",
        )


def ssh_closed(spec: Spec, site: str) -> bool:
    """A cloud site whose data deplat cannot reach (no ``options.ssh_cidrs``)."""
    from deplat.remote import access

    return not is_local(spec, site) and not access.ssh_open(spec.site(site))


def _remote(spec: Spec, site: str, secrets: SecretStore | None, driver: Any) -> RemoteSite:
    from deplat.secrets import SecretStore
    from deplat.sites import driver_for

    target = spec.site(site)
    driver = driver if driver is not None else driver_for(spec, target, secrets or SecretStore(spec))
    opener = getattr(driver, "remote", None)
    if opener is None:
        raise OperationFailed(f"site {site}: its driver reaches no VM over SSH")
    remote: RemoteSite = opener(target)
    return remote


def _repositories(spec: Spec, site: str, secrets: SecretStore | None) -> tuple[list[Any], str, SecretStore]:
    from deplat.data import repositories as repos
    from deplat.secrets import SecretStore

    store = secrets if secrets is not None else SecretStore(spec)
    found = repos.for_site(spec, store, site)
    password = repos.password(spec, store)
    store.masker.add(password)
    return found, password, store


def back_up(
    spec: Spec, site: str, emit: Emit = discard, *, secrets: SecretStore | None = None, driver: Any = None
) -> list[dict[str, Any]]:
    """Back up every stateful service of ``site``; one dict per backup (``taken_at`` among them)."""
    if is_local(spec, site):
        from deplat.failover.backup import backup_site, make_store

        return [b.to_dict() for b in backup_site(spec, site, make_store(spec), emit)]
    from deplat.remote import data as remote_data

    found, password, store = _repositories(spec, site, secrets)
    with _remote(spec, site, store, driver) as vm:
        return [b.to_dict() for b in remote_data.back_up(vm, spec, found, password, emit=emit)]


def restore(
    spec: Spec,
    site: str,
    *,
    reference_time: float,
    emit: Emit = discard,
    secrets: SecretStore | None = None,
    driver: Any = None,
    timeout: float = 120.0,
) -> list[dict[str, Any]]:
    """Restore the newest backup of every stateful service onto ``site``; one dict per service with
    ``backup_id`` (None: nothing to restore), ``taken_at`` and ``rpo_seconds`` (never negative).
    On a cloud site its services are stopped before and started after (``started``: healthy within
    ``timeout``); a local site's caller restarts them."""
    if is_local(spec, site):
        from deplat.failover.backup import make_store, restore_site

        done = restore_site(spec, site, make_store(spec), reference_time=reference_time, emit=emit)
    else:
        from deplat.remote import data as remote_data

        found, password, store = _repositories(spec, site, secrets)
        with _remote(spec, site, store, driver) as vm:
            done = remote_data.restore(
                vm, spec, found, password, reference_time=reference_time, timeout=timeout, emit=emit
            )
    restored = [r.to_dict() for r in done]
    for item in restored:
        rpo = item.get("rpo_seconds")
        if rpo is not None and rpo < 0:
            item["rpo_seconds"] = 0.0
            item["clock_skew"] = round(-rpo, 3)
    return restored


def backup_timers(
    spec: Spec, site: str, on: bool, *, secrets: SecretStore | None = None, driver: Any = None
) -> dict[str, Any]:
    """Turn ``site``'s backup timers on (it is the primary) or off (it is not). A local site has
    none (the watcher backs the primary up): nothing to do. Returns what was done."""
    services = [name for name, svc in spec.services.items() if svc.stateful]
    if not services or is_local(spec, site):
        return {"site": site, "timers": [], "on": on, "note": "no backup timers on this site"}
    from deplat.remote import services as units

    with _remote(spec, site, secrets, driver) as vm:
        return {"site": site, "timers": units.backup_timers(vm, services, on), "on": on}


def grant_lease(spec: Spec, site: str, *, secrets: SecretStore | None = None) -> dict[str, Any]:
    """Name ``site`` the primary in the repositories the cloud sites' backup timers write to
    (``deplat.data.lease``), so an old primary that comes back backs nothing up. Nothing to do
    when no cloud site backs up by itself (no declared repositories or no stateful service)."""
    from deplat.stacks.site_backups import backup_secrets

    if not backup_secrets(spec):
        return {"site": site, "note": "no backup timers write to repositories"}
    from deplat.data import lease
    from deplat.data import repositories as repos
    from deplat.secrets import SecretStore
    from deplat.transport import DirectTransport

    store = secrets if secrets is not None else SecretStore(spec)
    found = [r for r in repos.repositories(spec, store) if r.held_by != "local"]
    password = repos.password(spec, store)
    store.masker.add(password)
    granted = lease.grant(found, password, DirectTransport(spec.base_dir), app=spec.app, site=site)
    return store.masker.data(granted.to_dict())
