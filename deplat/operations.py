"""Run one operation (up, destroy, refresh, status) on many sites at once, each through its own driver.

- Which sites: the named ones (``--site``), else every site the operation covers. Roles come from the
  active set (``deplat.state``), so a failover's new primary is treated as primary. Fenced sites are
  left alone unless named, except that ``destroy`` and ``status`` cover fenced sites that run on
  this machine (no provider API is called). Cold standbys are stood up (``up``) or refreshed only
  when named; ``destroy`` and ``status`` cover them too (destroying a site with nothing deployed is a
  no-op, and status only reads deplat's own state).
- How: every site in its own thread, through ``deplat.sites.driver_for`` (chosen by the provider's
  capabilities). A failing site never aborts the others: any error becomes that site's failed
  ``SiteResult``.
- Previews (``preview_sites``) back ``deplat plan`` and the confirmation of ``deplat up``: Pulumi
  sites get a real engine preview (no changes made); sites without a program get one from their
  status (running -> same, else create).
- Ctrl-C is the CLI's (``deplat.cli.interrupt``): the first cancels, each site reports "canceled".
- ``up`` and ``destroy`` hold the spec's ``operation`` lock (``deplat.oplock``) while they run: one
  started during a failover, a rejoin or a drill is refused at once (exit 2), naming it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, ErrorClass, FilesystemError, InputError
from deplat.events import Emit, Event, EventKind, discard
from deplat.providers import provider_of
from deplat.sites import SiteResult, SiteStatus, driver_for
from deplat.state import load_active

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

OPERATIONS = ("up", "destroy", "refresh", "status", "preview")
# Operations that skip cold standbys unless they are named.
COLD_ONLY_WHEN_NAMED = {"up", "refresh", "preview"}
# Operations that hold the spec's operation lock while they run.
LOCKED = {"up", "destroy"}
# What a preview may report that changes something.
CHANGING_OPS = ("create", "update", "replace", "delete", "create-replacement", "delete-replaced")


@dataclass
class Selection:
    sites: list[Site] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # every site of the spec -> current role
    skipped: dict[str, str] = field(default_factory=dict)  # site -> why it is not part of this run


def select_sites(spec: Spec, names: Sequence[str] | None, operation: str) -> Selection:
    """The sites ``operation`` runs on; an unknown name is an ``InputError`` listing the valid ones."""
    active = load_active(spec)
    known = [s.name for s in spec.sites]
    wanted = list(dict.fromkeys(names or []))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise InputError(
            f"unknown site{'s' * (len(unknown) > 1)}: {', '.join(unknown)}",
            hint=f"sites in the spec: {', '.join(known)}",
        )
    selection = Selection(roles={s.name: active.role_of(spec, s.name) for s in spec.sites})
    for site in spec.sites:
        role = selection.roles[site.name]
        if wanted and site.name not in wanted:
            continue
        if role == "fenced" and not _fenced_in_scope(site, wanted, operation):
            reason = active.fenced.get(site.name, {}).get("reason", "")
            selection.skipped[site.name] = "fenced after a failover; never touched again" + (
                f" ({reason})" if reason else ""
            )
        elif role == "cold" and not wanted and operation in COLD_ONLY_WHEN_NAMED:
            selection.skipped[site.name] = f"cold standby: stood up on failover, or with --site {site.name}"
        else:
            selection.sites.append(site)
    return selection


def _fenced_in_scope(site: Site, wanted: list[str], operation: str) -> bool:
    """Which fenced sites an operation covers: ``destroy`` a named one (``--site X``: the user asks
    for it, whatever its provider) and, unnamed, one that runs on this machine (no provider API is
    called); ``status`` one that runs on this machine. ``up``/``refresh`` never: ``deplat rejoin``."""
    here = provider_of(site).capabilities.runs_locally
    if operation == "destroy":
        return site.name in wanted or (not wanted and here)
    return operation == "status" and here


def needs_engine(sites: Sequence[Site]) -> bool:
    return any(provider_of(s).capabilities.pulumi_program for s in sites)


def preflight(spec: Spec, sites: Sequence[Site], secrets: SecretStore) -> None:
    """What must hold before any cloud site runs: the ``pulumi`` CLI and the state passphrase."""
    if not needs_engine(sites):
        return
    from deplat.engine import passphrase, workspace

    workspace.pulumi_command()
    passphrase.resolve(spec, secrets)


def clear_stale_locks(spec: Spec, sites: Sequence[Site], emit: Emit) -> None:
    from deplat.engine import locks

    for site in sites:
        if not provider_of(site).capabilities.pulumi_program:
            continue
        for lock in locks.clear_stale(spec, site.name):
            emit(
                Event(EventKind.SITE_NOTE, f"removed a stale state lock ({lock.describe()})", site=site.name)
            )


class _SafeEmit:
    """Serialises events from site threads; a failing listener never fails a site."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._emit(event)


def _run_one(
    spec: Spec, site: Site, operation: str, secrets: SecretStore, emit: Emit, options: dict[str, Any]
) -> SiteResult:
    started = time.monotonic()
    emit(Event(EventKind.SITE_START, f"{operation} started", site=site.name, data={"operation": operation}))
    try:
        driver: Any = driver_for(spec, site, secrets)
        method: Callable[..., SiteResult] | None = getattr(driver, operation, None)
        if method is None:
            result = _preview_from_status(driver, site) if operation == "preview" else None
            if result is None:
                raise InputError(f"{site.provider.value} sites do not support {operation}")
        else:
            result = method(site, emit, **options)
    except DeplatError as exc:
        message = secrets.masker.text(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        result = SiteResult(
            site=site.name, operation=operation, ok=False, error=message, error_class=ErrorClass.FATAL
        )
    except Exception as exc:  # a bug in one site's driver must not take the others down
        message = secrets.masker.text(f"internal error: {type(exc).__name__}: {exc}")
        result = SiteResult(
            site=site.name, operation=operation, ok=False, error=message, error_class=ErrorClass.FATAL
        )
    if not result.seconds:
        result.seconds = round(time.monotonic() - started, 3)
    emit(
        Event(
            EventKind.SITE_END,
            "ok" if result.ok else (result.error or "failed"),
            site=site.name,
            data={
                "operation": operation,
                "ok": result.ok,
                "error_class": result.error_class,
                "changes": result.changes,
            },
        )
    )
    return result


def _preview_from_status(driver: Any, site: Site) -> SiteResult:
    """A preview for drivers without one (local sites): running -> same, else create."""
    status: SiteStatus = driver.status(site)
    op = "same" if status.running else "create"
    count = max(1, len(status.detail.get("services", {}) or {}))
    return SiteResult(site=site.name, operation="preview", ok=True, changes={op: count})


def run_sites(
    spec: Spec,
    sites: Sequence[Site],
    operation: str,
    secrets: SecretStore,
    emit: Emit = discard,
    parallel: bool = True,
    options: dict[str, Any] | None = None,
) -> list[SiteResult]:
    """Run ``operation`` on each of ``sites`` (in parallel threads); results in the sites' order.
    ``options``: keyword arguments of the drivers' method (``purge`` for destroy, ``replace_vm``
    for up and preview)."""
    if operation not in OPERATIONS:
        raise ValueError(operation)
    safe = _SafeEmit(emit)
    opts = dict(options or {})
    if not sites:
        return []
    if not parallel or len(sites) == 1:
        return [_run_one(spec, s, operation, secrets, safe, opts) for s in sites]
    pool = ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="deplat-site")
    try:
        futures = [pool.submit(_run_one, spec, s, operation, secrets, safe, opts) for s in sites]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a second Ctrl-C stops waiting at once


def preview_sites(
    spec: Spec,
    sites: Sequence[Site | str],
    secrets: SecretStore,
    emit: Emit = discard,
    parallel: bool = True,
    replace_vm: bool = False,
) -> list[SiteResult]:
    """One ``SiteResult`` (operation ``preview``) per site, in order; failures are per site.
    ``replace_vm``: what ``up --replace-vm`` would do (see ``refuse_vm_replacement``)."""
    resolved = [spec.site(s) if isinstance(s, str) else s for s in sites]
    if replace_vm:
        refuse_vm_replacement(resolved)
    preflight(spec, resolved, secrets)
    options = {"replace_vm": True} if replace_vm else None
    return run_sites(spec, resolved, "preview", secrets, emit, parallel, options)


def refuse_vm_replacement(sites: Sequence[Site]) -> None:
    """``InputError`` unless every site has a VM deplat can replace (a cloud site's Pulumi program)."""
    without = [
        s.name
        for s in sites
        if not (provider_of(s).capabilities.pulumi_program and "vm" in provider_of(s).RESOURCE_TYPES)
    ]
    if without:
        raise InputError(
            f"--replace-vm: {', '.join(without)} {'has' if len(without) == 1 else 'have'} no VM to replace "
            "(local sites run as processes on this machine)",
            hint="name only cloud sites with --site; `deplat destroy` then `deplat up` renews a local site",
        )


def changes_anything(previews: Sequence[SiteResult]) -> bool:
    """True when any preview would change something, or could not tell (failed)."""
    return any(not p.ok or any(p.changes.get(op, 0) for op in CHANGING_OPS) for p in previews)


def _selected(
    spec: Spec, names: Sequence[str] | None, operation: str, secrets: SecretStore, emit: Emit
) -> list[Site]:
    selection = select_sites(spec, names, operation)
    for name, reason in selection.skipped.items():
        emit(Event(EventKind.SITE_SKIPPED, reason, site=name, data={"role": selection.roles[name]}))
    preflight(spec, selection.sites, secrets)
    return selection.sites


def operate(
    operation: str,
    spec: Spec,
    names: Sequence[str] | None,
    secrets: SecretStore,
    emit: Emit = discard,
    parallel: bool = True,
    clear_locks: bool = False,
    *,
    purge_data: bool = False,
    replace_vm: bool = False,
    snapshot: bool = True,
) -> list[SiteResult]:
    """Run ``operation`` ("up", "destroy" or "refresh") on the selected sites, in parallel; a
    failing site never stops the others. ``purge_data`` (destroy): the sites' data is deleted
    too, after a final snapshot of it (``snapshot``; a site whose snapshot fails is not purged:
    ``deplat.data.before_purge``); ``replace_vm`` (up): each site gets a new VM (refused for sites
    without one)."""
    if purge_data and operation != "destroy":
        raise ValueError("purge_data is an option of destroy")
    if replace_vm and operation != "up":
        raise ValueError("replace_vm is an option of up")
    with operation_lock(spec, operation):
        return _operate(
            operation, spec, names, secrets, emit, parallel, clear_locks, purge_data, replace_vm, snapshot
        )


def operation_lock(spec: Spec, operation: str) -> contextlib.ExitStack[bool | None]:
    """The spec's ``operation`` lock for ``up`` and ``destroy`` (others take none)."""
    from deplat import oplock

    held = contextlib.ExitStack()
    if operation in LOCKED:
        hint = f"wait for it to finish, then run `deplat {operation}` again"
        with contextlib.suppress(FilesystemError):  # a read-only or full state folder: each site says so
            held.enter_context(oplock.hold(spec, "operation", f"deplat {operation}", hint=hint))
    return held


def _operate(
    operation: str,
    spec: Spec,
    names: Sequence[str] | None,
    secrets: SecretStore,
    emit: Emit,
    parallel: bool,
    clear_locks: bool,
    purge_data: bool,
    replace_vm: bool,
    snapshot: bool = True,
) -> list[SiteResult]:
    sites = _selected(spec, names, operation, secrets, emit)
    final = None
    if purge_data and snapshot:  # the data's last state, kept in the repositories, before it goes
        from deplat.data import before_purge

        final = before_purge.take(spec, sites, secrets, emit)
        sites = [s for s in sites if s.name not in final.refused]
    if replace_vm:
        refuse_vm_replacement(sites)
    if clear_locks:
        clear_stale_locks(spec, sites, emit)
    options = {"purge": True} if purge_data else {"replace_vm": True} if replace_vm else None
    from deplat.remote.config import NewVms

    watch = NewVms(spec, emit)
    results = run_sites(
        spec, sites, operation, secrets, watch if operation == "up" else emit, parallel, options
    )
    if final is not None:
        results = final.attach(spec, results, emit)
    if operation == "up":  # what the bootstrap wrote at first boot, brought up to date over SSH
        from deplat.remote import config

        config.push_sites(spec, results, secrets, emit, new_vms=sorted(watch.sites))
    from deplat.failover import frontdoor_process  # the app's entry point without DNS

    if operation == "up" and any(r.ok for r in results):
        from deplat.certs.deploy import after_up

        after_up(spec, results, secrets, emit)  # deplat's certificate onto each VM that came up
        try:
            door = frontdoor_process.ensure_running(spec)
        except InputError as exc:
            emit(Event(EventKind.SITE_NOTE, f"front door: {exc.message} ({exc.hint})"))
        else:
            if door is not None:
                urls = ", ".join(door.urls)
                emit(Event(EventKind.FRONTDOOR_START, f"front door at {urls}", data=door.to_dict()))
    elif operation == "destroy" and (
        (not names and all(r.ok for r in results))
        or any(r.ok and r.site == load_active(spec).primary for r in results)
    ):
        frontdoor_process.stop(spec)  # every site, or the primary, is gone: nothing left to forward to
    return results


def up_sites(
    spec: Spec, names: Sequence[str] | None, secrets: SecretStore, emit: Emit = discard, **kw: Any
) -> list[SiteResult]:
    return operate("up", spec, names, secrets, emit, **kw)


def destroy_sites(
    spec: Spec, names: Sequence[str] | None, secrets: SecretStore, emit: Emit = discard, **kw: Any
) -> list[SiteResult]:
    return operate("destroy", spec, names, secrets, emit, **kw)


def refresh_sites(
    spec: Spec, names: Sequence[str] | None, secrets: SecretStore, emit: Emit = discard, **kw: Any
) -> list[SiteResult]:
    return operate("refresh", spec, names, secrets, emit, **kw)


def status_sites(
    spec: Spec, names: Sequence[str] | None, secrets: SecretStore, parallel: bool = True
) -> list[SiteStatus]:
    """Every selected site's status; fenced sites are reported from the active set alone."""
    selection = select_sites(spec, names, "status")
    preflight(spec, selection.sites, secrets)

    def one(site: Site) -> SiteStatus:
        role = selection.roles[site.name]
        try:
            status = driver_for(spec, site, secrets).status(site)
        except DeplatError as exc:
            error = secrets.masker.text(exc.message)
            return SiteStatus(site.name, site.provider.value, role, False, False, detail={"error": error})
        except Exception as exc:
            error = secrets.masker.text(f"internal error: {type(exc).__name__}: {exc}")
            return SiteStatus(site.name, site.provider.value, role, False, False, detail={"error": error})
        status.role = role
        return status

    by_name: dict[str, SiteStatus] = {}
    for name, reason in selection.skipped.items():
        site = spec.site(name)
        by_name[name] = SiteStatus(
            name, site.provider.value, selection.roles[name], False, False, detail={"skipped": reason}
        )
    if parallel and len(selection.sites) > 1:
        with ThreadPoolExecutor(max_workers=len(selection.sites), thread_name_prefix="deplat-status") as pool:
            for status in pool.map(one, selection.sites):
                by_name[status.site] = status
    else:
        for site in selection.sites:
            by_name[site.name] = one(site)
    return [by_name[s.name] for s in spec.sites if s.name in by_name]
