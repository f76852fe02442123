"""The failover: move the primary role (traffic and data) from one site to another, step by step.

Steps, each journaled ``start`` / ``done`` with its result (``deplat.failover.journal``)::

    decide         who leaves, who takes over, why; refuse an unready target unless forced
    ensure_target  a warm target is checked with a probe; a cold one is stood up (its driver's up)
    final_backup   planned (the old site answers healthy): its stateful services are stopped, so
                   no write is acknowledged any more, and their data is backed up: nothing is lost.
                   Unplanned (old site down or suspended, or the watcher's decision): skipped, and
                   the newest periodic backup is accepted (its age is the RPO, reported as such)
    restore        the newest backup of each stateful service goes onto the target (RPO recorded)
    switch         the traffic switch, compare-and-swap: DNS on every provider, or the front door
    verify         the app's names (or the front door) answer healthy from the target
    fence          the old site is fenced in the active set and its state archived

A step found ``done`` in the journal is never run again: ``run_failover(..., resume=True)`` (and
``deplat failover --resume``) continues the newest unfinished journal after a crash, ``kill -9``
included, without repeating a side effect. Steps are also idempotent by themselves (up, restore,
CAS switch, fencing under a lock), which covers a crash between a side effect and its ``done``.

The old site: nothing here calls its driver or its provider, except a planned failover's
``final_backup`` on an old site that has just answered healthy (bounded by the probe timeout).
Its addresses (for the switch's compare-and-swap) come from the spec for local sites, or from the
address book that probes fill (``.deplat/addresses.json``); probing it is otherwise left to the
watcher. Its state is archived from local files only (a local site's state file, or a Pulumi
stack export from the state backend).

Test hook: ``DEPLAT_TEST_CRASH_AFTER=<step>`` (or ``<step>:start``) makes the process exit at once
with status 137, as if killed, right after journaling that step's ``done`` (or ``start``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import frontdoor
from deplat.failover.journal import Journal
from deplat.files import exclusive_lock, write_json_atomic
from deplat.paths import home, local_site_dir
from deplat.providers import provider_of
from deplat.sites import Addresses, driver_for
from deplat.spec.model import Site, Spec
from deplat.state import load_active, record_failover

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.sites import SiteDriver

STEPS = ("decide", "ensure_target", "final_backup", "restore", "switch", "verify", "fence")
FINAL_BACKUP_STOPPING = "final_backup: stopping the old site's stateful services"
CRASH_HOOK = "DEPLAT_TEST_CRASH_AFTER"  # test hook: see the module docstring

DriverFactory = Callable[[Site], "SiteDriver"]
_RUNNING: set[Path] = set()
T = TypeVar("T")  # journals a thread of this process is running now


@dataclass
class FailoverResult:
    ok: bool
    outcome: str  # done | unverified | already | conflict | refused | failed
    from_site: str
    to_site: str
    reason: str
    journal: str
    resumed: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    rpo_seconds: float | None = None
    planned: bool | None = None  # True: writes stopped and a final backup restored (RPO 0)
    restored: list[dict[str, Any]] = field(default_factory=list)
    switch: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Refused(Exception):
    """The failover must not go on: nothing was changed."""


class _Conflict(Exception):
    """Another failover switched traffic elsewhere first: adopt its result."""


# --- addresses without calling the site -----------------------------------------------------------


def address_book_path(spec: Spec) -> Path:
    return home(spec) / "addresses.json"


def remember_addresses(spec: Spec, site: str, addresses: Addresses) -> None:
    """Keep a site's addresses, learnt while it was reachable, for a later switch's CAS."""
    if not addresses:
        return
    path = address_book_path(spec)
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        book = {}
    entry = {"ipv4": list(addresses.ipv4), "ipv6": list(addresses.ipv6)}
    if book.get(site) != entry:
        book[site] = entry
        write_json_atomic(path, book)


def known_addresses(spec: Spec, site: str) -> Addresses | None:
    """A site's addresses with no call to its driver or provider: the spec for local sites, else
    the address book; None when unknown."""
    site_obj = spec.site(site)
    if provider_of(site_obj).capabilities.runs_locally:
        address = frontdoor.site_address(spec, site)
        return Addresses(ipv6=[address]) if ":" in address else Addresses(ipv4=[address])
    try:
        book = json.loads(address_book_path(spec).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    entry = book.get(site)
    if not entry:
        return None
    return Addresses(ipv4=list(entry.get("ipv4", [])), ipv6=list(entry.get("ipv6", [])))


def _addresses_dict(addresses: Addresses | None) -> dict[str, list[str]] | None:
    return None if addresses is None else {"ipv4": list(addresses.ipv4), "ipv6": list(addresses.ipv6)}


def _addresses(data: dict[str, Any] | None) -> Addresses | None:
    return None if data is None else Addresses(list(data.get("ipv4", [])), list(data.get("ipv6", [])))


def dns_resolver(spec: Spec) -> tuple[str, int] | None:
    """An explicit nameserver to verify through: the first rfc2136 provider given by IP."""
    import ipaddress

    for provider in spec.dns:
        if provider.provider.value != "rfc2136":
            continue
        server = str(provider.options.get("server", ""))
        try:
            ipaddress.ip_address(server)
        except ValueError:
            continue
        return server, int(provider.options.get("port", 53))
    return None


def active_lock(spec: Spec) -> AbstractContextManager[int]:
    """Serialises changes to the active set (fencing, adopting a new primary) across processes."""
    return exclusive_lock(home(spec) / "active.lock")


# --- the failover ---------------------------------------------------------------------------------


class _Failover:
    def __init__(
        self,
        spec: Spec,
        secrets: SecretStore,
        journal: Journal,
        emit: Emit,
        drivers: DriverFactory,
        wait: float,
    ) -> None:
        self.spec = spec
        self.secrets = secrets
        self.journal = journal
        self.emit = emit
        self.drivers = drivers
        self.wait = wait
        begin = journal.begin
        self.old: str = begin["from"]
        self.new: str = begin["to"]
        self.force: bool = bool(begin.get("force"))
        self.reason: str = str(begin.get("reason", "operator"))
        self.reference_time: float = float(begin.get("reference_time") or begin.get("requested_at") or 0)
        self.timeout = spec.failover.timeout

    # each step -----------------------------------------------------------------------------------
    def run(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for step in STEPS:
            done = self.journal.result_of(step)
            if done is not None:
                results[step] = done
                self._event(step, "skipped", done, "done before the resume")
                continue
            self.journal.start(step)
            self._crash_hook(f"{step}:start")
            self._event(step, "start", {})
            try:
                result = getattr(self, f"_{step}")(results)
            except (_Refused, _Conflict) as exc:
                self.journal.failed(step, str(exc))
                raise
            except Exception as exc:
                message = self.secrets.masker.text(f"{type(exc).__name__}: {exc}")
                self.journal.failed(step, message)
                self._event(step, "failed", {"error": message}, message)
                raise
            self.journal.done(step, result)
            results[step] = result
            self._event(step, "done", result)
            self._crash_hook(step)
        return results

    def _event(self, step: str, status: str, data: dict[str, Any], message: str = "") -> None:
        self.emit(
            Event(
                EventKind.FAILOVER_STEP,
                message or f"{step}: {status}",
                site=self.new,
                data=self.secrets.masker.data({"step": step, "status": status, **data}),
            )
        )

    @staticmethod
    def _crash_hook(point: str) -> None:
        if os.environ.get(CRASH_HOOK) == point:
            os._exit(137)

    def _probe(self, site: str, addresses: Addresses) -> Any:
        from deplat.failover.probe import probe_site, run_sync

        return run_sync(
            probe_site(
                self.spec, site, addresses, timeout=self.timeout, secrets=self.secrets, control_plane=True
            )
        )

    def _wait_healthy(self, site: str, addresses: Addresses) -> Any:
        """Probe until healthy or ``self.wait`` seconds pass; returns the last probe."""
        deadline = time.monotonic() + self.wait
        while True:
            probe = self._probe(site, addresses)
            if probe.health.value == "healthy" or time.monotonic() >= deadline:
                return probe
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    # decide --------------------------------------------------------------------------------------
    def _decide(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        spec, active = self.spec, load_active(self.spec)
        target = spec.site(self.new)
        role = active.role_of(spec, self.new)
        if role == "fenced" and not self.force:
            raise _Refused(f"site {self.new} is fenced (it was left by an earlier failover)")
        old_addresses = known_addresses(spec, self.old)
        decision: dict[str, Any] = {
            "from": self.old,
            "to": self.new,
            "reason": self.reason,
            "target_role": role,
            "old_addresses": _addresses_dict(old_addresses),
            "current_primary": active.primary,
        }
        if active.primary == self.new:
            decision["note"] = f"{self.new} is already the primary"
        if role == "cold":
            decision["target_health"] = "cold"
            return decision
        addresses = self.drivers(target).addresses(target)
        probe = self._probe(self.new, addresses)
        decision["target_health"] = probe.health.value
        decision["target_reason"] = probe.reason
        if probe.health.value != "healthy":
            if not self.force:
                raise _Refused(
                    f"target {self.new} is not ready ({probe.health.value}: {probe.reason or 'no detail'})"
                )
            decision["forced"] = True
        return decision

    # ensure_target -------------------------------------------------------------------------------
    def _ensure_target(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        target = self.spec.site(self.new)
        driver = self.drivers(target)
        stood_up = False
        if results["decide"].get("target_health") == "cold":
            outcome = driver.up(target, self.emit)
            stood_up = True
            if not outcome.ok and not self.force:
                raise OperationFailed(
                    f"could not stand up the cold site {self.new}: {outcome.error or 'unknown error'}",
                    hint="fix the cause and run `deplat failover --resume`, or fail over to another site",
                )
        addresses = driver.addresses(target)
        probe = self._wait_healthy(self.new, addresses)
        if probe.health.value != "healthy" and not self.force:
            raise OperationFailed(
                f"target {self.new} is not healthy ({probe.health.value}: {probe.reason})",
                hint="`deplat failover --resume` retries; --force goes on anyway",
            )
        remember_addresses(self.spec, self.new, addresses)
        return {
            "addresses": _addresses_dict(addresses),
            "stood_up": stood_up,
            "health": probe.health.value,
        }

    # final_backup --------------------------------------------------------------------------------
    def _final_backup(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        stateful = [name for name, svc in self.spec.services.items() if svc.stateful]
        if not stateful:
            return {"planned": False, "note": "no stateful service"}
        begin = self.journal.begin
        if float(begin.get("reference_time") or 0) < float(begin.get("requested_at") or 0):
            # the watcher (or a caller) says when the old site was lost: not a planned move
            return {"planned": False, "note": f"{self.old} was lost before the failover began"}
        old = self.spec.site(self.old)
        driver = self.drivers(old)
        stop = getattr(driver, "stop", None)
        if not callable(stop):
            return {"planned": False, "note": f"{self.old}'s driver cannot stop its services"}
        stopping_before = any(
            r.get("kind") == "note" and r.get("message") == FINAL_BACKUP_STOPPING
            for r in self.journal.records
        )
        addresses = known_addresses(self.spec, self.old) or driver.addresses(old)
        # resumed after this step stopped the old site's services: it no longer answers healthy,
        # but it is still planned (its data is complete and waits for its final backup)
        probe = None if stopping_before else self._probe(self.old, addresses)
        if probe is not None and probe.health.value != "healthy":
            return {
                "planned": False,
                "note": f"{self.old} is {probe.health.value} ({probe.reason or 'no detail'}): "
                "the newest periodic backup is restored",
            }
        from deplat.failover.backup import backup_site, make_store

        self.journal.note(FINAL_BACKUP_STOPPING, {"site": self.old, "services": stateful})
        stopped = stop(old, stateful, self.wait)
        missing = [n for n in stateful if n not in stopped]
        try:
            if missing:
                raise OperationFailed(f"could not stop {', '.join(missing)} on {self.old}")
            backups = backup_site(self.spec, self.old, make_store(self.spec), self.emit)
        except Exception:
            # writes must not stay stopped on the site that still serves: start them again
            self.drivers(old).restart(old, stateful, self.wait)
            raise
        return {
            "planned": True,
            "stopped": stopped,
            "backups": [b.to_dict() for b in backups],
            "note": f"{self.old}'s writes stopped and its data backed up: nothing acknowledged is lost",
        }

    # restore -------------------------------------------------------------------------------------
    def _restore(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if not any(svc.stateful for svc in self.spec.services.values()):
            return {"restored": [], "rpo_seconds": None, "note": "no stateful service"}
        from deplat.failover.backup import make_store, restore_site

        target = self.spec.site(self.new)
        store = make_store(self.spec)
        restored = restore_site(
            self.spec, target.name, store, reference_time=self.reference_time or time.time(), emit=self.emit
        )
        items = [asdict(r) for r in restored]
        if (results.get("final_backup") or {}).get("planned"):
            for item in items:  # the final backup holds every acknowledged write
                if item.get("backup_id"):
                    item["rpo_seconds"] = 0.0
        for item in items:  # a backup taken after the reference time lost nothing: never negative
            if item.get("rpo_seconds") is not None:
                item["rpo_seconds"] = max(0.0, float(item["rpo_seconds"]))
        rpos = [r["rpo_seconds"] for r in items if r.get("rpo_seconds") is not None]
        # The target's services run (warm, or just stood up): restart the ones whose data was
        # replaced, so that they load it rather than what they held in memory.
        services = [r["service"] for r in items if r.get("backup_id")]
        restarted = self._restart(target, services) if services else []
        addresses = _addresses(results["ensure_target"]["addresses"]) or Addresses()
        probe = self._wait_healthy(self.new, addresses)
        return {
            "restored": items,
            "rpo_seconds": max(rpos) if rpos else None,
            "restarted": restarted,
            "health": probe.health.value,
        }

    def _restart(self, target: Site, services: list[str]) -> list[str]:
        driver = self.drivers(target)
        restart = getattr(driver, "restart", None)
        if callable(restart):  # SiteDriver.restart(site, services, timeout) -> the services back
            return list(restart(target, services, self.wait))
        if provider_of(target).capabilities.runs_locally:
            return restart_local_services(self.spec, target.name, services, timeout=self.wait)
        return []

    # switch --------------------------------------------------------------------------------------
    def _switch(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if frontdoor.uses_front_door(self.spec):
            outcome = frontdoor.switch(self.spec, self.old, self.new)
            data: dict[str, Any] = {
                "via": "front_door",
                "outcome": outcome.outcome,
                "front_door": outcome.to_dict(),
            }
            if outcome.outcome == "conflict":
                raise _Conflict(
                    f"the front door points at {outcome.site}, not {self.old}: another failover won"
                )
            return data
        from deplat.dns.switch import switch_all

        old = _addresses(results["decide"].get("old_addresses"))
        new = _addresses(results["ensure_target"]["addresses"]) or Addresses()
        report = switch_all(self.spec, self.secrets, old, new, self.emit, self.timeout * 5)
        providers = _switch_outcomes(report)
        outcomes = set(providers.values())
        data = {"via": "dns", "providers": providers, "report": _jsonable(report)}
        if "switched" in outcomes:
            data["outcome"] = "switched"
        elif outcomes and outcomes <= {"already", "failed"} and "already" in outcomes:
            data["outcome"] = "already"
        elif "conflict" in outcomes and not outcomes & {"switched", "already"}:
            raise _Conflict(f"DNS no longer points at {self.old}: another failover won ({providers})")
        else:
            raise OperationFailed(
                f"the DNS switch failed on every provider: {providers}",
                hint="`deplat failover --resume` retries the switch (compare-and-swap: it is safe)",
            )
        if not getattr(report, "ok", True):
            data["partial"] = True
        return data

    # verify --------------------------------------------------------------------------------------
    def _verify(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait
        new_addresses = _addresses(results["ensure_target"]["addresses"]) or Addresses()
        attempts = 0
        last: dict[str, Any] = {}
        while True:
            attempts += 1
            last = self._verify_once(new_addresses)
            if last["healthy"] or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        last["attempts"] = attempts
        if last["healthy"]:
            last["first_healthy_at"] = time.time()
        return last

    def _verify_once(self, addresses: Addresses) -> dict[str, Any]:
        if frontdoor.uses_front_door(self.spec):
            if not frontdoor.front_door_running(self.spec):
                probe = self._probe(self.new, addresses)
                return {
                    "via": "target",
                    "healthy": probe.health.value == "healthy",
                    "note": "no front door is running: probed the target directly",
                }
            return _verify_front_door(self.spec, self.new, self.timeout)
        resolver = dns_resolver(self.spec)
        if resolver is None:
            probe = self._probe(self.new, addresses)
            return {
                "via": "target",
                "healthy": probe.health.value == "healthy",
                "note": "no DNS provider to query by IP: probed the target directly",
            }
        from deplat.failover.probe import probe_names, run_sync

        names = run_sync(probe_names(self.spec, resolver, timeout=self.timeout))
        return {
            "via": "dns",
            "resolver": f"{resolver[0]}:{resolver[1]}",
            "healthy": names.serves_only([*addresses.ipv4, *addresses.ipv6]),
            "names": names.names,
            "health": names.health.value,
        }

    # fence ---------------------------------------------------------------------------------------
    def _fence(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        with active_lock(self.spec):
            active = load_active(self.spec)
            if active.primary == self.new and self.old in active.fenced:
                recorded = False
            else:
                record_failover(self.spec, self.old, self.new, self.reason)
                recorded = True
        archive = archive_site_state(self.spec, self.old, self.journal.id, self.secrets)
        return {"fenced": self.old, "primary": self.new, "recorded": recorded, "archive": archive}


def restart_local_services(spec: Spec, site: str, services: list[str], *, timeout: float) -> list[str]:
    """Restart a local site's services by ending their processes: the site's supervisor starts
    them again at once (its crash restart). Returns the services that came back with a new pid."""
    import signal

    from deplat.local import sitestate

    site_dir = local_site_dir(spec, site)
    before = (sitestate.read_state(site_dir) or {}).get("services", {})
    old_pids: dict[str, int] = {}
    for name in services:
        svc = before.get(name) or {}
        pid = svc.get("pid")
        if pid and sitestate.process_alive(pid, svc.get("identity")):
            old_pids[name] = int(pid)
            sitestate.kill_group(int(svc.get("pgid") or pid), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    back: list[str] = []
    while old_pids and time.monotonic() < deadline:
        now = (sitestate.read_state(site_dir) or {}).get("services", {})
        back = [
            name
            for name, pid in old_pids.items()
            if (now.get(name) or {}).get("pid") not in (None, pid)
            and sitestate.process_alive(now[name]["pid"], now[name].get("identity"))
        ]
        if len(back) == len(old_pids):
            break
        time.sleep(0.05)
    return back


def _verify_front_door(spec: Spec, site: str, timeout: float) -> dict[str, Any]:
    import httpx

    address = frontdoor.front_door_address(spec)
    checks: list[dict[str, Any]] = []
    for name, svc in spec.services.items():
        if svc.health is None or svc.health.port not in frontdoor.front_door_ports(spec):
            continue
        url = f"http://{address}:{svc.health.port}{svc.health.path}"
        try:
            answer = httpx.get(url, timeout=timeout, trust_env=False)
            served_by = answer.headers.get(frontdoor.SITE_HEADER)
            ok = answer.status_code == svc.health.expect and served_by == site
            checks.append(
                {"service": name, "url": url, "status": answer.status_code, "site": served_by, "ok": ok}
            )
        except httpx.HTTPError as exc:
            checks.append({"service": name, "url": url, "ok": False, "error": type(exc).__name__})
    return {"via": "front_door", "healthy": bool(checks) and all(c["ok"] for c in checks), "checks": checks}


def _switch_outcomes(report: Any) -> dict[str, str]:
    """``{dns provider: outcome}`` from a ``SwitchReport`` (whatever its exact shape)."""
    for attr in ("providers", "outcomes", "results"):
        items = getattr(report, attr, None)
        if items is None:
            continue
        if isinstance(items, dict):
            return {str(k): str(getattr(v, "outcome", v)) for k, v in items.items()}
        return {
            str(getattr(i, "provider", getattr(i, "name", n))): str(i.outcome) for n, i in enumerate(items)
        }
    return {}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return str(obj)


def archive_site_state(spec: Spec, site: str, tag: str, secrets: SecretStore | None = None) -> dict[str, Any]:
    """Archive a left site's state from local files or the state backend (never its provider's API)."""
    target = home(spec) / "archive" / f"{site}-{tag}"
    site_obj = spec.site(site)
    if provider_of(site_obj).capabilities.runs_locally:
        source = local_site_dir(spec, site)
        copied: list[str] = []
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(source.glob("*.json")):
                shutil.copy2(path, target / path.name)
                copied.append(path.name)
        return {"kind": "local", "path": str(target), "files": copied}
    # A Pulumi site: `pulumi stack export` through the engine reads the state backend only (no
    # provider plugin, no provider API). Without the CLI or the passphrase, the checkpoint file of
    # the embedded file backend is copied as it is; a remote backend is then only noted.
    from deplat.paths import state_backend_url

    exported, why = _engine_export(spec, site_obj, secrets, target)
    if exported is not None:
        return {"kind": "pulumi", "path": str(target), "files": [exported.name], "via": "pulumi stack export"}
    url = state_backend_url(spec)
    if not url.startswith("file://"):
        return {
            "kind": "pulumi",
            "path": None,
            "note": f"not archived ({why}); state in {url}: run `pulumi stack export` later",
        }
    backend = Path(url[len("file://") :])
    found = sorted((backend / ".pulumi" / "stacks").glob(f"**/{site}.json*"))
    config = home(spec) / "pulumi" / site
    if found or config.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    for path in found:
        shutil.copy2(path, target / path.name)
    if config.is_dir():
        shutil.copytree(config, target / "workspace", dirs_exist_ok=True)
    return {
        "kind": "pulumi",
        "path": str(target) if found else None,
        "files": [p.name for p in found],
        "via": "file backend copy",
        "note": why,
    }


def _engine_export(
    spec: Spec, site: Site, secrets: SecretStore | None, target: Path
) -> tuple[Path | None, str]:
    """``pulumi stack export`` of the site's stack into ``target``; (None, why) when it cannot run."""
    try:
        from deplat.engine import passphrase, workspace
    except ImportError:
        return None, "no engine"
    if secrets is None:
        return None, "no secrets store"
    if workspace.find_pulumi() is None:
        return None, "no pulumi CLI"
    try:
        phrase = passphrase.resolve(spec, secrets)
        target.mkdir(parents=True, exist_ok=True)
        # not Stack.export_stack(): it passes --show-secrets, and the archive would hold every secret
        path = workspace.export_stack_file(spec, site, phrase, target / f"{site.name}.export.json")
        path.chmod(0o600)
    except Exception as exc:  # best effort: the failover itself is already done
        return None, secrets.masker.text(f"export failed: {type(exc).__name__}: {exc}")[:300]
    return path, ""


# --- entry point ----------------------------------------------------------------------------------


def run_failover(
    spec: Spec,
    secrets: SecretStore,
    *,
    to: str | None = None,
    from_: str | None = None,
    force: bool = False,
    resume: bool = False,
    reason: str = "operator",
    reference_time: float | None = None,
    emit: Emit = discard,
    drivers: DriverFactory | None = None,
    wait: float | None = None,
    abandon_on_failure: bool = False,
) -> FailoverResult:
    """Fail over from ``from_`` (default: the current primary) to ``to``; or, with ``resume``,
    continue the newest unfinished failover. ``reference_time``: when the old site was lost
    (the RPO is measured from there; default: now). ``drivers`` (tests): site -> driver.
    ``wait``: how long the target may take to become healthy (default: 10 probe timeouts, >= 15 s).
    ``abandon_on_failure`` (the watcher): a failed step ends the journal instead of leaving it to
    ``--resume``.
    """
    factory: DriverFactory = drivers or (lambda site: driver_for(spec, site, secrets))
    names = [s.name for s in spec.sites]
    if resume:
        journal = Journal.newest_unfinished(spec, secrets.masker)
        owner = _live_owner(journal) if journal is not None else None
        if journal is not None and owner is not None:
            raise InputError(
                f"the failover in {journal.path.name} is still running (pid {owner})",
                hint="wait for it to finish, or stop that process first",
            )
        if journal is None:
            raise InputError(
                "no unfinished failover to resume", hint="start one with `deplat failover --to SITE`"
            )
        journal.note("resumed", {"pid": os.getpid()})
    else:
        if not to:
            raise InputError("which site takes over? say --to SITE", hint=f"sites: {', '.join(names)}")
        for label, value in (("--to", to), ("--from", from_)):
            if value is not None and value not in names:
                raise InputError(f"{label} {value}: no such site", hint=f"sites: {', '.join(names)}")
        old = from_ or load_active(spec).primary
        if old == to:
            raise InputError(f"{to} is already the site being left", hint="choose another --to")
        _supersede_dead(spec, secrets, to)
        now = time.time()
        journal = Journal.create(
            spec,
            {
                "from": old,
                "to": to,
                "force": force,
                "reason": reason,
                "requested_at": now,
                "reference_time": reference_time or now,
                "pid": os.getpid(),
            },
            secrets.masker,
        )
    begin = journal.begin
    emit(
        Event(
            EventKind.FAILOVER_BEGIN,
            f"failover {begin['from']} -> {begin['to']}",
            site=begin["to"],
            data=begin,
        )
    )
    failover = _Failover(
        spec,
        secrets,
        journal,
        emit,
        factory,
        wait if wait is not None else max(15.0, 10 * spec.failover.timeout),
    )
    result = FailoverResult(
        ok=False,
        outcome="failed",
        from_site=begin["from"],
        to_site=begin["to"],
        reason=str(begin.get("reason", "")),
        journal=str(journal.path),
        resumed=resume,
        started_at=float(begin.get("requested_at", time.time())),
    )
    _RUNNING.add(journal.path)
    try:
        results = failover.run()
    except _Refused as exc:
        journal.end("refused", {"message": str(exc)})
        result.outcome, result.message = "refused", str(exc)
        _finish(result, journal, emit, secrets)
        raise OperationFailed(str(exc), hint="--force fails over anyway") from None
    except _Conflict as exc:
        journal.end("conflict", {"message": str(exc)})
        result.outcome, result.message = "conflict", str(exc)
        return _finish(result, journal, emit, secrets)
    except OperationFailed as exc:
        result.message = exc.message
        if abandon_on_failure:
            journal.end("failed", {"message": exc.message})
        _finish(result, journal, emit, secrets)
        raise
    except Exception as exc:  # the journal stays unfinished: --resume continues from the failed step
        result.message = secrets.masker.text(f"{type(exc).__name__}: {exc}")
        if abandon_on_failure:
            journal.end("failed", {"message": result.message})
        _finish(result, journal, emit, secrets)
        raise OperationFailed(
            f"failover stopped at a step: {result.message}", hint="`deplat failover --resume` continues"
        ) from exc
    verified = bool(results["verify"].get("healthy"))
    already = results["switch"].get("outcome") == "already"
    result.outcome = "already" if already else ("done" if verified else "unverified")
    result.ok = verified
    result.rpo_seconds = results["restore"].get("rpo_seconds")
    result.planned = bool((results.get("final_backup") or {}).get("planned"))
    result.restored = results["restore"].get("restored", [])
    result.switch = results["switch"]
    result.verify = results["verify"]
    journal.end(result.outcome, {"rpo_seconds": result.rpo_seconds})
    return _finish(result, journal, emit, secrets)


def _supersede_dead(spec: Spec, secrets: SecretStore, to: str) -> None:
    """Close unfinished journals of dead processes: a new failover replaces them, and a later
    ``--resume`` must not replay a stale move."""
    for journal in Journal.all(spec):
        if journal.begin and not journal.finished and _live_owner(journal) is None:
            journal.masker = secrets.masker
            journal.end("superseded", {"by_failover_to": to})


def _live_owner(journal: Journal) -> int | None:
    """The pid of a live process other than us that runs this journal, if any."""
    pids = [journal.begin.get("pid")] + [
        r.get("data", {}).get("pid") for r in journal.records if r.get("kind") == "note"
    ]
    pid = next((p for p in reversed(pids) if isinstance(p, int)), None)
    if pid is None:
        return None
    if pid == os.getpid():  # this process: live only if one of its threads runs it now
        return pid if journal.path in _RUNNING else None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a zombie (killed, not yet reaped) is not running anything
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return pid
    return None if state in ("Z", "X") else pid


def _finish(result: FailoverResult, journal: Journal, emit: Emit, secrets: SecretStore) -> FailoverResult:
    _RUNNING.discard(journal.path)
    result.steps = journal.steps()
    result.finished_at = time.time()
    result.message = secrets.masker.text(result.message)
    data = secrets.masker.data(result.to_dict())
    emit(Event(EventKind.FAILOVER_END, f"failover {result.outcome}", site=result.to_site, data=data))
    return result
