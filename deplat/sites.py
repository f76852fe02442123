"""A site, as the rest of deplat sees it: stand it up, ask its status, take it down.

Two drivers implement ``SiteDriver``: ``deplat.local.driver.LocalDriver`` (supervised processes on
loopback) and ``deplat.engine.driver.PulumiDriver`` (cloud sites through the Automation API).
``driver_for`` picks one lazily, so importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from deplat.events import Emit, discard

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec


@dataclass
class Addresses:
    """Where a site answers: what the traffic switch points the app's names at."""

    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ipv4 or self.ipv6)


@dataclass
class SiteResult:
    """The outcome of one operation (up, destroy, refresh) on one site."""

    site: str
    operation: str
    ok: bool
    changes: dict[str, int] = field(default_factory=dict)  # e.g. {"create": 3, "same": 2}
    outputs: dict[str, Any] = field(default_factory=dict)  # ipv4, ipv6, url, bucket, instance_id
    error: str | None = None
    error_class: str | None = None  # suspended | forbidden | transient | fatal
    seconds: float = 0.0

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


class SiteDriver(Protocol):
    def up(self, site: Site, emit: Emit = discard) -> SiteResult: ...

    def destroy(self, site: Site, emit: Emit = discard) -> SiteResult: ...

    def refresh(self, site: Site, emit: Emit = discard) -> SiteResult: ...

    def status(self, site: Site) -> SiteStatus: ...

    def addresses(self, site: Site) -> Addresses: ...


def driver_for(spec: Spec, site: Site, secrets: SecretStore) -> SiteDriver:
    if site.provider.value == "local":
        from deplat.local.driver import LocalDriver

        return LocalDriver(spec, secrets)
    from deplat.engine.driver import PulumiDriver

    return PulumiDriver(spec, secrets)
