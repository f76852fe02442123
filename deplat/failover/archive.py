"""Archiving a fenced site's state, through its site driver's ``archive_state``: from local files or
the state backend only, never the provider's API (a local site's state files; a Pulumi stack export,
else the file backend's checkpoint). Best effort: the failover is already done when this runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deplat.paths import paths
from deplat.sites import driver_for
from deplat.spec.model import Spec

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.sites import SiteDriver


def archive_site_state(
    spec: Spec, site: str, tag: str, secrets: SecretStore | None = None, driver: SiteDriver | None = None
) -> dict[str, Any]:
    """Archive a left site's state under ``.deplat/archive/<site>-<tag>/``; says what was kept."""
    if driver is None:
        from deplat.secrets import SecretStore

        driver = driver_for(spec, spec.site(site), secrets or SecretStore(spec))
    return driver.archive_state(spec.site(site), paths(spec).archive(site, tag))
