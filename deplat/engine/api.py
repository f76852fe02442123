"""What other parts of deplat call on the engine: previews of many sites at once.

``preview_sites`` backs ``deplat plan`` (without ``--offline``) and the confirmation step of
``deplat up``: cloud sites get a real engine preview (no changes made); local sites, which have no
engine, get one from their status (running -> same, else create).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from deplat.events import Emit, discard
from deplat.sites import SiteResult

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

CHANGING_OPS = ("create", "update", "replace", "delete", "create-replacement", "delete-replaced")


def preview_sites(
    spec: Spec,
    sites: Sequence[Site | str],
    secrets: SecretStore,
    emit: Emit = discard,
    parallel: bool = True,
) -> list[SiteResult]:
    """One ``SiteResult`` (operation ``preview``) per site, in order; failures are per site."""
    from deplat import operations

    resolved = [spec.site(s) if isinstance(s, str) else s for s in sites]
    operations.preflight(spec, resolved, secrets)
    return operations.run_sites(spec, resolved, "preview", secrets, emit, parallel)


def changes_anything(previews: Sequence[SiteResult]) -> bool:
    """True when any preview would change something, or could not tell (failed)."""
    return any(not p.ok or any(p.changes.get(op, 0) for op in CHANGING_OPS) for p in previews)
