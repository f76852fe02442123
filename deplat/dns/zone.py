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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "base_dir": str(self.base_dir)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppZone:
        """The inverse of ``to_dict``; a value of the wrong shape raises ``TypeError``/``KeyError``."""
        return cls(
            zone=typed(data["zone"], str),
            names=[typed(n, str) for n in typed(data["names"], list)],
            ttl=typed(data["ttl"], int),
            base_dir=Path(typed(data["base_dir"], str)),
            providers=[
                DnsEntry(
                    typed(p["name"], str),
                    typed(p["kind"], str),
                    dict(typed(p["options"], dict)),
                    DnsCredentials(**typed(p["credentials"], dict)),
                )
                for p in typed(data["providers"], list)
            ],
        )


def as_zone(spec_or_zone: Spec | AppZone) -> AppZone:
    """The switch's functions take either; the spec is read once here."""
    return spec_or_zone if isinstance(spec_or_zone, AppZone) else AppZone.of(spec_or_zone)


def typed(value: Any, kind: type) -> Any:
    """``value`` when it is a ``kind`` (a bool is no int), else ``TypeError``: for reading back JSON."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
