"""The traffic switch: read, switch, sync and re-TTL the app's records on every DNS provider at once.

Every configured DNS provider runs in its own thread with its own deadline; one that is
suspended, refusing or silent fails alone and never delays, blocks or rolls back the others. Each
result says what happened there:

    switched   the provider served ``old`` and now serves ``new`` (or, for sync/ttl: records written)
    already    it already served ``new`` (a resumed failover re-runs the switch safely)
    conflict   it served something else: someone changed it; nothing was written there
    failed     it could not be read or written; ``error_class`` says why (see ``deplat.dns.base``)

Compare-and-swap: a switch writes a provider only if, for every name, it still serves ``old``
(``old=None``: no A/AAAA at all). Names already on ``new`` are left alone. Providers with a
server-side precondition (rfc2136, route53, clouddns) also refuse the write themselves if the
records change between the read and the write.

Public functions (the failover calls these): ``read_all``, ``switch_all``, ``sync_all``,
``ttl_all``, plus ``disagreements`` for ``deplat dns status``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.dns.base import CasConflict, Change, Deadline, DnsBackend, DnsError, Served, backend_for
from deplat.dns.zone import AppZone, as_zone
from deplat.errors import DeplatError
from deplat.events import Emit, Event, EventKind, discard

if TYPE_CHECKING:
    from deplat.dns.zone import DnsEntry
    from deplat.secrets import SecretStore
    from deplat.sites import Addresses
    from deplat.spec.model import Spec

OUTCOMES = ("switched", "already", "conflict", "failed")
#: the TTL ``deplat dns ttl --lower`` sets by default ahead of a planned move
LOW_TTL = 30
#: how long past its deadline a provider's thread may take before it is reported as failed
GRACE = 0.5


@dataclass
class ProviderAnswer:
    """What one DNS provider serves now for each of the app's names, or why it could not say."""

    provider: str
    kind: str
    records: dict[str, Served] = field(default_factory=dict)
    error: str | None = None
    error_class: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "kind": self.kind,
            "ok": self.ok,
            "records": {name: served.to_dict() for name, served in self.records.items()},
            "error": self.error,
            "error_class": self.error_class,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class ProviderResult:
    """The outcome of one switch/sync/ttl operation on one DNS provider."""

    name: str
    kind: str
    outcome: str  # switched | already | conflict | failed
    error_class: str | None = None
    message: str = ""
    seconds: float = 0.0
    before: dict[str, Served] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "error_class": self.error_class,
            "message": self.message,
            "seconds": round(self.seconds, 4),
            "before": {name: served.to_dict() for name, served in self.before.items()},
        }


@dataclass
class SwitchReport:
    """Per-provider results of one operation over every DNS provider."""

    operation: str  # switch | sync | ttl
    results: list[ProviderResult]
    new: Addresses | None = None
    old: Addresses | None = None
    ttl: int | None = None

    @property
    def ok(self) -> bool:
        """At least one provider serves the new records and none conflicted."""
        outcomes = [r.outcome for r in self.results]
        return "conflict" not in outcomes and any(o in ("switched", "already") for o in outcomes)

    def by_outcome(self, outcome: str) -> list[ProviderResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def failed(self) -> list[ProviderResult]:
        return self.by_outcome("failed")

    @property
    def conflicts(self) -> list[ProviderResult]:
        return self.by_outcome("conflict")

    def to_dict(self) -> dict[str, Any]:
        def addr(a: Addresses | None) -> dict[str, list[str]] | None:
            return None if a is None else {"ipv4": list(a.ipv4), "ipv6": list(a.ipv6)}

        return {
            "ok": self.ok,
            "operation": self.operation,
            "old": addr(self.old),
            "new": addr(self.new),
            "ttl": self.ttl,
            "providers": [r.to_dict() for r in self.results],
        }


def app_names(spec: Spec | AppZone) -> list[str]:
    """The app's names as absolute lower-case names (no trailing dot), in spec order."""
    return as_zone(spec).names


def describe(served: Served) -> str:
    values = served.ipv4 + served.ipv6
    return ", ".join(values) if values else "nothing"


# -- running one function on every provider at once ------------------------------------------

Step = Callable[[DnsBackend, list[str], Deadline], ProviderResult]


def _guarded(
    provider: DnsEntry, app: AppZone, secrets: SecretStore, step: Step, timeout: float
) -> ProviderResult:
    started = time.monotonic()
    kind = provider.kind
    backend: DnsBackend | None = None
    before: dict[str, Served] = {}
    try:
        backend = backend_for(provider, app, secrets)
        result = step(backend, app.names, Deadline(timeout))
    except CasConflict as exc:
        result = ProviderResult(provider.name, kind, "conflict", None, str(exc))
    except DnsError as exc:
        result = ProviderResult(provider.name, kind, "failed", exc.error_class, exc.message)
    except DeplatError as exc:  # e.g. a secret that is not set
        hint = f" ({exc.hint})" if exc.hint else ""
        result = ProviderResult(provider.name, kind, "failed", "auth", exc.message + hint)
    except Exception as exc:  # a bug in one backend must not stop the others
        result = ProviderResult(provider.name, kind, "failed", "fatal", f"{type(exc).__name__}: {exc}")
    finally:
        if backend is not None:
            before = backend.last_read
            with contextlib.suppress(Exception):  # closing is best effort
                backend.close()
    if not result.before and before:
        result.before = before
    result.seconds = time.monotonic() - started
    result.message = secrets.masker.text(result.message)
    return result


def _run_all(
    app: AppZone, secrets: SecretStore, step: Step, timeout: float, emit: Emit, event_kind: EventKind
) -> list[ProviderResult]:
    providers = list(app.providers)
    if not providers:
        return []
    results: dict[str, ProviderResult] = {}
    pool = ThreadPoolExecutor(max_workers=len(providers), thread_name_prefix="deplat-dns")
    try:
        futures: dict[Future[ProviderResult], DnsEntry] = {
            pool.submit(_guarded, p, app, secrets, step, timeout): p for p in providers
        }
        pending = set(futures)
        hard_stop = time.monotonic() + timeout + GRACE
        while pending:
            left = hard_stop - time.monotonic()
            if left <= 0:
                break
            done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                results[result.name] = result
                _emit(emit, event_kind, result)
        for future in pending:  # stuck past its deadline: report it, never wait for it
            p = futures[future]
            result = ProviderResult(
                p.name,
                p.kind,
                "failed",
                "transient",
                f"no result within {timeout + GRACE:g} s; a write may still land later",
                timeout + GRACE,
            )
            results[p.name] = result
            _emit(emit, event_kind, result)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[p.name] for p in providers]


def _emit(emit: Emit, kind: EventKind, result: ProviderResult) -> None:
    text = f"{result.name}: {result.outcome}" + (f" ({result.message})" if result.message else "")
    emit(Event(kind, text, data=result.to_dict()))


def _read(backend: DnsBackend, names: list[str], deadline: Deadline) -> dict[str, Served]:
    backend.last_read = backend.read(names, deadline)  # kept for the result's ``before``
    return backend.last_read


# -- the public operations ------------------------------------------------------------------


def read_all(spec: Spec | AppZone, secrets: SecretStore, timeout: float = 5.0) -> list[ProviderAnswer]:
    """What every DNS provider serves now for each app name, asked of the provider itself."""
    app = as_zone(spec)

    def step(backend: DnsBackend, names: list[str], deadline: Deadline) -> ProviderResult:
        _read(backend, names, deadline)
        return ProviderResult(backend.name, backend.kind, "already")

    answers = []
    for result in _run_all(app, secrets, step, timeout, discard, EventKind.DNS_READ):
        answers.append(
            ProviderAnswer(
                result.name,
                result.kind,
                dict(result.before),
                None if result.outcome != "failed" else result.message,
                result.error_class,
                result.seconds,
            )
        )
    return answers


def switch_all(
    spec: Spec | AppZone,
    secrets: SecretStore,
    old: Addresses | None,
    new: Addresses,
    emit: Emit = discard,
    timeout: float = 5.0,
) -> SwitchReport:
    """Point every app name at ``new`` on every DNS provider, where it still serves ``old``."""
    app = as_zone(spec)
    want = Served.of(new)
    expect = Served.of(old) if old is not None else Served()

    def step(backend: DnsBackend, names: list[str], deadline: Deadline) -> ProviderResult:
        current = _read(backend, names, deadline)
        changes, conflicts = [], []
        for name in names:
            served = current[name]
            if served.same_addresses(want):
                continue
            if served.same_addresses(expect):
                changes.append(_change(name, served, want))
            else:
                conflicts.append(f"{name} serves {describe(served)}, expected {describe(expect)}")
        if conflicts:
            return ProviderResult(
                backend.name, backend.kind, "conflict", None, "; ".join(conflicts) + "; nothing was written"
            )
        if not changes:
            return ProviderResult(
                backend.name, backend.kind, "already", None, f"already serves {describe(want)}"
            )
        deadline.check("write")
        backend.write(changes, app.ttl, deadline)
        moved = ", ".join(c.name for c in changes)
        return ProviderResult(backend.name, backend.kind, "switched", None, f"{moved} -> {describe(want)}")

    results = _run_all(app, secrets, step, timeout, emit, EventKind.DNS_SWITCH)
    return SwitchReport("switch", results, new=new, old=old, ttl=app.ttl)


def sync_all(
    spec: Spec | AppZone,
    secrets: SecretStore,
    addresses: Addresses,
    emit: Emit = discard,
    timeout: float = 5.0,
) -> SwitchReport:
    """Make every DNS provider serve ``addresses`` at the spec's TTL, whatever it serves now."""
    app = as_zone(spec)
    want = Served.of(addresses)
    ttl = app.ttl

    def step(backend: DnsBackend, names: list[str], deadline: Deadline) -> ProviderResult:
        current = _read(backend, names, deadline)
        changes = [
            _change(name, current[name], want, cas=False)
            for name in names
            if not (current[name].same_addresses(want) and _all_ttls(current[name], ttl))
        ]
        if not changes:
            return ProviderResult(
                backend.name, backend.kind, "already", None, f"already serves {describe(want)}"
            )
        backend.write(changes, ttl, deadline)
        return ProviderResult(
            backend.name, backend.kind, "switched", None, f"wrote {', '.join(c.name for c in changes)}"
        )

    results = _run_all(app, secrets, step, timeout, emit, EventKind.DNS_SYNC)
    return SwitchReport("sync", results, new=addresses, ttl=ttl)


def ttl_all(
    spec: Spec | AppZone,
    secrets: SecretStore,
    ttl: int = LOW_TTL,
    emit: Emit = discard,
    timeout: float = 5.0,
) -> SwitchReport:
    """Rewrite the records every provider serves now with ``ttl`` (e.g. low, before a planned move).

    The values are kept; the write is a compare-and-swap on them, so a concurrent switch wins.
    """

    def step(backend: DnsBackend, names: list[str], deadline: Deadline) -> ProviderResult:
        current = _read(backend, names, deadline)
        changes = [
            _change(name, served, Served(served.ipv4, served.ipv6))
            for name, served in current.items()
            if not served.empty and not _all_ttls(served, ttl)
        ]
        if not changes:
            return ProviderResult(backend.name, backend.kind, "already", None, f"TTL already {ttl} s")
        backend.write(changes, ttl, deadline)
        return ProviderResult(
            backend.name,
            backend.kind,
            "switched",
            None,
            f"TTL {ttl} s on {', '.join(c.name for c in changes)}",
        )

    results = _run_all(as_zone(spec), secrets, step, timeout, emit, EventKind.DNS_TTL)
    return SwitchReport("ttl", results, ttl=ttl)


def disagreements(answers: list[ProviderAnswer]) -> dict[str, dict[str, str]]:
    """Names on which the providers that answered do not serve the same addresses:
    ``{name: {provider: "addresses"}}``."""
    found: dict[str, dict[str, str]] = {}
    names = list(dict.fromkeys(n for a in answers if a.ok for n in a.records))
    for name in names:
        views = {a.provider: describe(a.records[name]) for a in answers if a.ok and name in a.records}
        if len(set(views.values())) > 1:
            found[name] = views
    return found


def _change(name: str, current: Served, new: Served, cas: bool = True) -> Change:
    return Change(name, current, new, cas)


def _all_ttls(served: Served, ttl: int) -> bool:
    """Every record type the name has is served with ``ttl``."""
    return all(served.ttl_of(rdtype, ttl) == ttl for rdtype in ("A", "AAAA") if served.values(rdtype))


def dns_resolver(spec: Spec) -> tuple[str, int] | None:
    """A nameserver to resolve the app's names through, as users would reach it: the first rfc2136
    provider given by IP (its server), or None."""
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


def primary_addresses(spec: Spec, secrets: SecretStore) -> tuple[str, Addresses]:
    """The current primary (from the active set) and the addresses it answers on: the spec's when
    it decides them (local sites: no driver is loaded), else what the site's driver reads."""
    from deplat.errors import OperationFailed
    from deplat.providers import provider_of
    from deplat.sites import Addresses, driver_for
    from deplat.state import load_active

    site = spec.site(load_active(spec).primary)
    ip = provider_of(site).address(site, spec)
    if ip is not None:
        addresses = Addresses.of(ip)
    else:
        try:
            addresses = driver_for(spec, site, secrets).addresses(site)
        except ModuleNotFoundError:
            raise OperationFailed(
                f"cannot ask site {site.name} for its addresses: its driver is not installed"
            ) from None
    if not addresses:
        raise OperationFailed(
            f"site {site.name} (the primary) has no addresses yet", hint="is it up? try: deplat status"
        )
    return site.name, addresses
