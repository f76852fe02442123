"""When the app's certificate is obtained or renewed, and where a site gets it from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.certs.store import CertInfo, CertStore
from deplat.files import exclusive_lock
from deplat.paths import ProjectPaths

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec


@dataclass(frozen=True)
class CertStatus:
    """The certificate deplat holds for the app, and what ``ensure`` did about it."""

    info: CertInfo | None
    #: "obtained", "renewed", "kept" (fresh enough) or "none" (``status`` and nothing stored)
    action: str
    #: why it was (or would be) obtained or renewed; empty when nothing is due
    reason: str
    names: list[str]
    renew_before_days: int

    def days_left(self, now: datetime | None = None) -> float | None:
        return self.info.days_left(now or datetime.now(UTC)) if self.info else None

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        days = self.days_left(now)
        return {
            "action": self.action,
            "reason": self.reason,
            "names": self.names,
            "renew_before_days": self.renew_before_days,
            "certificate": self.info.to_dict() if self.info else None,
            "days_left": round(days, 1) if days is not None else None,
        }


def app_names(spec: Spec) -> list[str]:
    from deplat.dns.switch import app_names as names

    return sorted(names(spec))


def _store(spec: Spec) -> CertStore:
    return CertStore(ProjectPaths.of(spec).certs)


def due(spec: Spec, info: CertInfo | None, now: datetime) -> str:
    """Why a new certificate is needed now; empty when the one held is good."""
    if info is None:
        return "no certificate yet"
    wanted = app_names(spec)
    if sorted(info.names) != wanted:
        return f"the names changed ({', '.join(info.names)} -> {', '.join(wanted)})"
    if info.directory != spec.certificates.acme_directory:
        return f"the ACME server changed ({info.directory} -> {spec.certificates.acme_directory})"
    days = info.days_left(now)
    if days < spec.certificates.renew_before_days:
        return f"{max(days, 0):.0f} days left, renewing below {spec.certificates.renew_before_days}"
    return ""


def status(spec: Spec, now: datetime | None = None) -> CertStatus:
    """What is held and whether it is due, without the passphrase and without any network call."""
    info = _store(spec).info()
    reason = due(spec, info, now or datetime.now(UTC))
    return CertStatus(
        info, "none" if info is None else "kept", reason, app_names(spec), spec.certificates.renew_before_days
    )


def ensure(
    spec: Spec, secrets: SecretStore, *, force: bool = False, now: datetime | None = None
) -> CertStatus:
    """Obtain the certificate, or renew it when due (or ``force``); keep it otherwise."""
    from deplat.certs.order import obtain
    from deplat.dns.base import backend_for
    from deplat.dns.zone import AppZone
    from deplat.engine import passphrase

    store = _store(spec)
    config = spec.certificates
    with exclusive_lock(ProjectPaths.of(spec).lock("certs"), timeout=600, what="another certificate order"):
        info = store.info()
        reason = due(spec, info, now or datetime.now(UTC)) or ("renewal asked for" if force else "")
        if not reason:
            return CertStatus(info, "kept", "", app_names(spec), config.renew_before_days)
        phrase = passphrase.resolve(spec, secrets)
        account = store.account_key(config.acme_directory, phrase)
        zone = AppZone.of(spec)
        backends = [backend_for(p, zone, secrets) for p in zone.providers]
        try:
            issued = obtain(
                app_names(spec),
                config.acme_directory,
                account,
                backends,
                email=config.email,
                ca_bundle=_ca_bundle(spec),
                propagation_seconds=config.propagation_seconds,
            )
        finally:
            for backend in backends:
                backend.close()
        if account is None:
            store.save_account_key(config.acme_directory, issued.account_key_json, phrase)
        new = store.save_certificate(issued.fullchain_pem, issued.key_pem, config.acme_directory, phrase)
        secrets.masker.add(issued.key_pem)
        action = "obtained" if info is None else "renewed"
        return CertStatus(new, action, reason, app_names(spec), config.renew_before_days)


def pem_pair(spec: Spec, secrets: SecretStore) -> tuple[str, str] | None:
    """(certificate chain, private key) in PEM, for installing on a site; None when none is held.
    The key is registered with the masker, so it never shows in output."""
    from deplat.engine import passphrase

    store = _store(spec)
    if store.info() is None:
        return None
    pair = store.pem_pair(passphrase.resolve(spec, secrets))
    if pair:
        secrets.masker.add(pair[1])
    return pair


def _ca_bundle(spec: Spec) -> str | None:
    bundle = spec.certificates.ca_bundle
    if not bundle:
        return None
    path = Path(bundle).expanduser()
    return str(path if path.is_absolute() else spec.base_dir / path)
