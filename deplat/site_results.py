"""What a site operation reports: where a site answers, the outcome of one operation, its status.

Plain data shared by the site drivers (``deplat.local.driver``, ``deplat.engine.driver``) and their
callers; ``deplat.sites`` re-exports them with the ``SiteDriver`` protocol.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Addresses:
    """Where a site answers: what the traffic switch points the app's names at."""

    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ipv4 or self.ipv6)

    @classmethod
    def of(cls, ip: str) -> Addresses:
        """One address, IPv4 or IPv6."""
        return cls(ipv6=[ip]) if ":" in ip else cls(ipv4=[ip])


@dataclass
class SiteResult:
    """The outcome of one operation (up, destroy, refresh) on one site."""

    site: str
    operation: str
    ok: bool
    changes: dict[str, int] = field(default_factory=dict)  # e.g. {"create": 3, "same": 2}
    outputs: dict[str, Any] = field(default_factory=dict)  # ipv4, ipv6, url, bucket, instance_id
    error: str | None = None
    error_class: str | None = None  # an ErrorClass (its value in --json)
    seconds: float = 0.0
    # destroy: the site's data it left in the account (forgotten by deplat) or deleted for good
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # destroy --purge-data: the final snapshot of each stateful service (deplat.data.records.Backup)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    # up, cloud sites: what the config push did (deplat.remote.config.Pushed.to_dict())
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SiteStatus:
    site: str
    provider: str
    role: str
    exists: bool
    running: bool
    last_update: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
