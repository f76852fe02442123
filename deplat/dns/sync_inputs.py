"""What ``deplat dns sync`` needs to know, taken from the validated spec and kept beside it in
``.deplat/cache/`` (``deplat.spec.cache``), so that the next run reads it without building the spec
model (start-up: ``benchmarks/dns_sync_vs_octodns.py``).

Everything here follows from the spec's bytes (and the code that reads them, both in the cache's
key): the app's zone and DNS providers, each site's address when the spec decides it (local
sites), the spec's primary, where the active set and the secrets file are. What changes without
the spec changing is read at run time, as the full command does: the active set (which site is
the primary now), secret values, whether the DNS providers' SDKs are installed. Names of secrets
only, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.dns.zone import AppZone, typed

if TYPE_CHECKING:
    from deplat.site_results import Addresses
    from deplat.spec.model import Spec


@dataclass(frozen=True)
class SyncInputs:
    zone: AppZone
    addresses: dict[str, str | None]  # every site, its address when the spec decides it
    spec_primary: str  # the primary when no active set is saved
    active_file: Path
    secrets_file: Path | None
    sdk_modules: list[str]  # what the DNS providers import

    @classmethod
    def of(cls, spec: Spec) -> SyncInputs:
        from deplat.preflight import dns_sdk_modules
        from deplat.providers import provider_of
        from deplat.spec.filepaths import resolve
        from deplat.state import active_path

        return cls(
            zone=AppZone.of(spec),
            addresses={s.name: provider_of(s).address(s, spec) for s in spec.sites},
            spec_primary=spec.primary.name,
            active_file=active_path(spec),
            secrets_file=resolve(spec, spec.secrets_file) if spec.secrets_file else None,
            sdk_modules=dns_sdk_modules(spec),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone.to_dict(),
            "addresses": self.addresses,
            "spec_primary": self.spec_primary,
            "active_file": str(self.active_file),
            "secrets_file": None if self.secrets_file is None else str(self.secrets_file),
            "sdk_modules": self.sdk_modules,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncInputs:
        """The inverse of ``to_dict``; a value of the wrong shape raises ``TypeError``/``KeyError``."""
        addresses = typed(data["addresses"], dict)
        secrets_file = data["secrets_file"]
        return cls(
            zone=AppZone.from_dict(data["zone"]),
            addresses={typed(k, str): v if v is None else typed(v, str) for k, v in addresses.items()},
            spec_primary=typed(data["spec_primary"], str),
            active_file=Path(typed(data["active_file"], str)),
            secrets_file=None if secrets_file is None else Path(typed(secrets_file, str)),
            sdk_modules=[typed(m, str) for m in typed(data["sdk_modules"], list)],
        )

    def primary(self) -> tuple[str, Addresses] | None:
        """The primary now (from the active set) and its address; None when only its site's
        driver can say (a cloud site: the full command asks it)."""
        from deplat.site_results import Addresses
        from deplat.state import read_active

        site = read_active(self.active_file, set(self.addresses), self.spec_primary).primary
        ip = self.addresses.get(site)
        return None if ip is None else (site, Addresses.of(ip))
