"""What the traffic switch knows of the app: its zone, its names there, their TTL, and the DNS
providers serving them, as plain data taken from the validated spec once (``AppZone.of``).

The backends and ``deplat.dns.switch`` read only this, never the spec model, so that ``deplat dns
sync`` can run from what an earlier command validated (``AppZone.to_dict``, kept with the spec in
``.deplat/cache/``: see ``deplat.dns.quick_sync``) without building the model again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.dns.base import fqdn

if TYPE_CHECKING:
    from deplat.spec.model import Spec


@dataclass(frozen=True)
class DnsCredentials:
    """Where one DNS provider's credentials come from (the spec's ``credentials``)."""

    profile: str | None = None
    file: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class DnsEntry:
    """One ``dns:`` entry of the spec."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    credentials: DnsCredentials = field(default_factory=DnsCredentials)


@dataclass(frozen=True)
class AppZone:
    zone: str
    names: list[str]  # absolute, lower case, no trailing dot, in spec order
    ttl: int
    base_dir: Path  # credentials files are relative to it
    providers: list[DnsEntry]

    @classmethod
    def of(cls, spec: Spec) -> AppZone:
        return cls(
            zone=spec.domain.zone,
            names=list(dict.fromkeys(fqdn(n, spec.domain.zone) for n in spec.domain.names)),
            ttl=spec.domain.ttl,
            base_dir=spec.base_dir,
            providers=[
                DnsEntry(
                    p.name,
                    p.provider.value,
                    dict(p.options),
                    DnsCredentials(p.credentials.profile, p.credentials.file, p.credentials.secret),
                )
                for p in spec.dns
            ],
        )

    def entry(self, name: str) -> DnsEntry:
        for entry in self.providers:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "base_dir": str(self.base_dir)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppZone:
        """The inverse of ``to_dict``; a value of the wrong shape raises ``TypeError``/``KeyError``."""
        return cls(
            zone=_typed(data["zone"], str),
            names=[_typed(n, str) for n in _typed(data["names"], list)],
            ttl=_typed(data["ttl"], int),
            base_dir=Path(_typed(data["base_dir"], str)),
            providers=[
                DnsEntry(
                    _typed(p["name"], str),
                    _typed(p["kind"], str),
                    dict(_typed(p["options"], dict)),
                    DnsCredentials(**_typed(p["credentials"], dict)),
                )
                for p in _typed(data["providers"], list)
            ],
        )


def as_zone(spec_or_zone: Spec | AppZone) -> AppZone:
    """The switch's functions take either; the spec is read once here."""
    return spec_or_zone if isinstance(spec_or_zone, AppZone) else AppZone.of(spec_or_zone)


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
