"""A site, as the rest of deplat sees it: stand it up, ask its status, restart it, archive its state.

Two drivers implement ``SiteDriver``: ``deplat.local.driver.LocalDriver`` (supervised processes on
loopback) and ``deplat.engine.driver.PulumiDriver`` (Pulumi stacks through the Automation API).
``driver_for`` picks one by the site's provider's capabilities (``deplat.providers``), lazily, so
importing this module costs nothing. The data they return lives in ``deplat.site_results``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deplat.events import Emit, discard
from deplat.site_results import Addresses, SiteResult, SiteStatus

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

__all__ = ["Addresses", "SiteDriver", "SiteResult", "SiteStatus", "driver_for"]


class SiteDriver(Protocol):
    def up(self, site: Site, emit: Emit = discard) -> SiteResult: ...

    def destroy(self, site: Site, emit: Emit = discard, purge: bool = False) -> SiteResult:
        """Take the site down; its data is kept unless ``purge`` (the result's ``kept`` /
        ``deleted`` name it)."""
        ...

    def refresh(self, site: Site, emit: Emit = discard) -> SiteResult: ...

    def status(self, site: Site) -> SiteStatus: ...

    def addresses(self, site: Site) -> Addresses: ...

    def restart(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Restart ``services`` of a running site (e.g. after a restore into their data); returns
        the services that came back healthy within ``timeout`` seconds."""
        ...

    def stop(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Stop ``services`` and keep them stopped (a planned failover's final backup needs their
        writes ended); returns the services stopped within ``timeout`` seconds."""
        ...

    def archive_state(self, site: Site, dest: Path) -> dict[str, Any]:
        """Copy what deplat keeps of the site's state into ``dest`` (owner-only), from local files
        or the state backend only, never the provider's API, secrets never decrypted; a summary
        ``{"kind", "path", "files", ...}``."""
        ...


def driver_for(spec: Spec, site: Site, secrets: SecretStore) -> SiteDriver:
    """The driver of ``site``: by its provider's capabilities, never by its name."""
    from deplat.providers import provider_of

    capabilities = provider_of(site).capabilities
    if capabilities.runs_locally:
        from deplat.local.driver import LocalDriver

        return LocalDriver(spec, secrets)
    if capabilities.pulumi_program:
        from deplat.engine.driver import PulumiDriver

        return PulumiDriver(spec, secrets)
    raise TypeError(f"no site driver for {site.provider.value} sites (neither local nor a Pulumi program)")
