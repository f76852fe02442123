"""Which sites get the app's certificate, and when.

- ``install_everywhere``: ``deplat certs`` (after obtaining or renewing) and ``deplat certs
  --install``: every running site with a VM, or the named ones.
- ``before_traffic``: the failover's ``certificate`` step: the target serves deplat's certificate
  for every app name before the old site's writes stop and traffic moves; installed when it does not.
- ``after_up``: ``deplat up`` installs it on each cloud site it just stood up, once the VM's first
  boot is over (``cloud-init status --wait``).

Sites without a VM (``local`` sites: processes on loopback) hold no certificate: skipped.
A site is reached through its driver: the SSH endpoint and the HTTPS address come from its outputs
(``ipv4``, optional ``ssh_port``/``ssh_host_key``, ``https_port``, default 443); a driver may
instead offer ``open_remote(site) -> RemoteSite`` (tests: a VM reached on loopback with its own
``Layout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.remote.certs import HTTPS_PORT, SiteCertificate, check_served, install_and_check, leaf_fingerprint

if TYPE_CHECKING:
    from deplat.remote.connect import RemoteSite
    from deplat.secrets import SecretStore
    from deplat.site_results import SiteResult
    from deplat.sites import SiteDriver
    from deplat.spec.model import Site, Spec

DriverFactory = Callable[["Site"], "SiteDriver"]
#: waits for the VM's first boot (packages, Caddy, the Caddyfile) before installing after ``up``
FIRST_BOOT_WAIT: tuple[str, ...] = ("cloud-init", "status", "--wait")
FIRST_BOOT_SECONDS = 900.0
#: how long a just-created VM may take before its SSH server answers
SSH_SECONDS = 180.0


def has_vm(site: Site) -> bool:
    from deplat.providers import provider_of

    return provider_of(site).capabilities.has_vm


def _drivers(spec: Spec, secrets: SecretStore, drivers: DriverFactory | None) -> DriverFactory:
    if drivers is not None:
        return drivers
    from deplat.sites import driver_for

    return lambda site: driver_for(spec, site, secrets)


def reach(
    spec: Spec, site: Site, secrets: SecretStore, driver: SiteDriver
) -> tuple[RemoteSite, tuple[str, int]]:
    """The site's VM over SSH and the address its HTTPS answers on (the one DNS points at)."""
    from deplat.remote.connect import endpoint_of, open_site

    outputs = driver.status(site).outputs
    endpoint = endpoint_of(site, outputs)
    opener = getattr(driver, "open_remote", None)
    remote = opener(site) if opener else open_site(spec, site, secrets, endpoint=endpoint)
    return remote, (endpoint.host, int(outputs.get("https_port") or HTTPS_PORT))


def _held(spec: Spec, secrets: SecretStore) -> tuple[str, str] | None:
    from deplat import certs

    return certs.pem_pair(spec, secrets)


def install_on(
    spec: Spec,
    site: Site,
    secrets: SecretStore,
    driver: SiteDriver,
    pair: tuple[str, str],
    emit: Emit = discard,
) -> SiteCertificate:
    """Install ``pair`` (chain, key) on one site and check what it serves; failures in the result."""
    from deplat.certs.manage import app_names

    try:
        remote, https = reach(spec, site, secrets, driver)
    except DeplatError as exc:
        return SiteCertificate(
            site.name, "", leaf_fingerprint(pair[0]), error=secrets.masker.text(exc.message)
        )
    with remote:
        result = install_and_check(remote, pair[0], pair[1], https, app_names(spec))
    if result.error:
        result.error = secrets.masker.text(result.error)
    _emit(emit, result)
    return result


def install_everywhere(
    spec: Spec,
    secrets: SecretStore,
    names: Sequence[str] | None = None,
    *,
    drivers: DriverFactory | None = None,
    emit: Emit = discard,
) -> list[SiteCertificate]:
    """Install deplat's certificate on every running site with a VM (or the named ones)."""
    from deplat.operations import select_sites

    pair = _held(spec, secrets)
    if pair is None:
        raise OperationFailed("deplat holds no certificate for the app", hint="run `deplat certs` first")
    factory = _drivers(spec, secrets, drivers)
    fingerprint = leaf_fingerprint(pair[0])

    def one(site: Site) -> SiteCertificate:
        if not has_vm(site):
            return SiteCertificate(
                site.name, "", fingerprint, note="no VM (runs on this machine): no certificate"
            )
        driver = factory(site)
        try:
            running = driver.status(site).running
        except DeplatError as exc:
            return SiteCertificate(site.name, "", fingerprint, error=secrets.masker.text(exc.message))
        if not running:
            return SiteCertificate(site.name, "", fingerprint, note="not running: nothing to install on")
        return install_on(spec, site, secrets, driver, pair, emit)

    sites = select_sites(spec, names, "status").sites
    if not sites:
        return []
    with ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="deplat-certs") as pool:
        return list(pool.map(one, sites))


def before_traffic(
    spec: Spec, site: Site, secrets: SecretStore, driver: SiteDriver, *, force: bool = False
) -> dict[str, Any]:
    """The failover's certificate step for target ``site``: a JSON-able result. ``OperationFailed``
    when the target cannot be made to serve deplat's certificate (unless ``force``)."""
    from deplat import certs
    from deplat.certs.manage import app_names

    if not has_vm(site):
        return {"skipped": True, "note": f"{site.name} has no VM of its own to hold a certificate"}
    state = certs.status(spec)
    if state.info is None:
        return {
            "skipped": True,
            "note": "deplat holds no certificate for the app (`deplat certs` obtains one): "
            f"{site.name} serves whatever its web server has",
        }
    result: dict[str, Any] = {"skipped": False, "names": app_names(spec), "certificate": state.info.serial}
    problem = _unusable(state.info.not_after)
    if problem is None:
        pair = _held(spec, secrets)
        assert pair is not None  # status saw it a moment ago
        served = _already_served(spec, site, secrets, driver, leaf_fingerprint(pair[0]))
        if served is not None:
            return {**result, "serving": True, "installed": False, "note": "already served"}
        outcome = install_on(spec, site, secrets, driver, pair)
        result.update(outcome.to_dict())
        if outcome.serving:
            return result
        problem = outcome.error or f"{site.name} does not serve the certificate"
    if not force:
        raise OperationFailed(
            f"target {site.name} does not serve a valid certificate for "
            f"{', '.join(app_names(spec))}: {problem}",
            hint=f"fix the cause and run `deplat failover --resume`; `deplat failover --to {site.name} "
            "--force` moves traffic anyway",
        )
    return {**result, "serving": False, "forced": True, "error": problem}


def _unusable(not_after: datetime) -> str | None:
    if not_after <= datetime.now(UTC):
        return f"deplat's certificate expired on {not_after:%Y-%m-%d}; `deplat certs` renews it"
    return None


def _already_served(
    spec: Spec, site: Site, secrets: SecretStore, driver: SiteDriver, fingerprint: str
) -> dict[str, str] | None:
    """The handshakes alone (no SSH): per name "ok" when the site serves it already, else None."""
    from deplat.certs.manage import app_names
    from deplat.remote.connect import endpoint_of

    try:
        outputs = driver.status(site).outputs
        host = endpoint_of(site, outputs).host
    except DeplatError:
        return None
    seen = check_served(host, int(outputs.get("https_port") or HTTPS_PORT), app_names(spec), fingerprint)
    return seen if all(v == "ok" for v in seen.values()) else None


def after_up(
    spec: Spec,
    results: Sequence[SiteResult],
    secrets: SecretStore,
    emit: Emit = discard,
    *,
    drivers: DriverFactory | None = None,
    first_boot: Sequence[str] | None = FIRST_BOOT_WAIT,
    ssh_seconds: float = SSH_SECONDS,
) -> list[SiteCertificate]:
    """After ``deplat up``: deplat's certificate onto each cloud site that came up, once its first
    boot is over (``first_boot``: the command that waits for it; None: do not wait). Nothing when
    deplat holds no certificate. Never raises: each site's outcome is an event and a result."""
    sites = [spec.site(r.site) for r in results if r.ok and has_vm(spec.site(r.site))]
    if not sites:
        return []
    try:
        pair = _held(spec, secrets)
    except DeplatError as exc:
        emit(Event(EventKind.CERT_INSTALL, f"certificate not installed: {exc.message}"))
        return []
    if pair is None:
        return []
    factory = _drivers(spec, secrets, drivers)

    def one(site: Site) -> SiteCertificate:
        driver = factory(site)
        problem = _wait_first_boot(spec, site, secrets, driver, first_boot, ssh_seconds)
        if problem:
            result = SiteCertificate(site.name, "", leaf_fingerprint(pair[0]), error=problem)
            _emit(emit, result)
            return result
        return install_on(spec, site, secrets, driver, pair, emit)

    with ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="deplat-certs") as pool:
        return list(pool.map(one, sites))


def _wait_first_boot(
    spec: Spec,
    site: Site,
    secrets: SecretStore,
    driver: SiteDriver,
    argv: Sequence[str] | None,
    ssh_seconds: float,
) -> str | None:
    """None once the VM answers over SSH and its first boot is over; else why not."""
    from deplat.transport.base import TransportError

    deadline = time.monotonic() + ssh_seconds
    try:
        remote, _https = reach(spec, site, secrets, driver)
        with remote:
            while True:
                try:
                    remote.transport.run(["true"], timeout=30)
                    break
                except TransportError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(2)
            if argv:
                done = remote.transport.run(list(argv), timeout=FIRST_BOOT_SECONDS)
                # exit 2: cloud-init finished with recoverable errors; the files may still be there
                if done.returncode not in (0, 2):
                    return f"its first boot did not finish: {done.describe()}"
    except DeplatError as exc:
        return secrets.masker.text(exc.message)
    return None


def _emit(emit: Emit, result: SiteCertificate) -> None:
    if result.serving:
        message = f"certificate installed and served for {len(result.names)} name(s)"
    else:
        message = f"certificate not served: {result.error or result.note or 'unknown'}"
    emit(Event(EventKind.CERT_INSTALL, message, site=result.site, data=result.to_dict()))
