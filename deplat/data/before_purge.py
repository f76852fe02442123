"""A final snapshot of a site's data before ``deplat destroy --purge-data`` deletes it.

Purging deletes a site's data volume (cloud) or data folder (local) for good. First, each stateful
service's data is backed up to the site's restic repositories through the failover's one door to
data (``deplat.failover.data.back_up``: local sites from their folders on this machine, cloud sites
with restic ON the VM over SSH, ``deplat.remote.data``). The snapshots are named in the destroy's
result. When the backup fails (no password, no repository answers, the VM cannot be reached), that
site's purge is refused (nothing deleted, exit 1) with the way out: ``--no-snapshot`` purges without
one. A site whose data was never written (no folder yet) or a cloud site with nothing deployed needs
no snapshot; a cloud site whose port 22 is closed to everyone (no ``options.ssh_cidrs``) cannot have
one, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.site_results import SiteResult
    from deplat.spec.model import Site, Spec

NO_SNAPSHOT_HINT = "fix the backup and run it again, or purge without a final snapshot: --no-snapshot"


@dataclass
class FinalSnapshots:
    taken: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # site -> its backups
    refused: dict[str, str] = field(default_factory=dict)  # site -> why its purge is refused

    def attach(self, spec: Spec, results: list[SiteResult], emit: Emit = discard) -> list[SiteResult]:
        """The destroy's results with each site's snapshots, and a failed result (the reason and
        ``--no-snapshot``) for each site whose purge was refused, in the spec's order."""
        from deplat.errors import ErrorClass
        from deplat.site_results import SiteResult

        for result in results:
            result.snapshots = self.taken.get(result.site, [])
        refused = []
        for name, why in self.refused.items():
            emit(Event(EventKind.SITE_ERROR, why, site=name, data={"hint": NO_SNAPSHOT_HINT}))
            error = f"{why} (hint: {NO_SNAPSHOT_HINT})"
            refused.append(SiteResult(name, "destroy", ok=False, error=error, error_class=ErrorClass.FATAL))
        order = [s.name for s in spec.sites]
        return sorted([*results, *refused], key=lambda r: order.index(r.site))


def take(spec: Spec, sites: Sequence[Site], secrets: SecretStore, emit: Emit = discard) -> FinalSnapshots:
    """Back up each site's stateful data (sites one after the other); a site whose backup fails is
    in ``refused`` with the reason (masked), never raised."""
    from deplat.failover import data
    from deplat.sites import driver_for

    found = FinalSnapshots()
    if not any(svc.stateful for svc in spec.services.values()):
        return found
    for site in sites:
        try:
            if not data.is_local(spec, site.name):
                if not driver_for(spec, site, secrets).status(site).exists:
                    continue  # nothing deployed: no data to keep
                if data.ssh_closed(spec, site.name):
                    raise OperationFailed(
                        "its port 22 is closed to everyone (no options.ssh_cidrs): restic cannot run there",
                        hint="add this machine's address to options.ssh_cidrs and run `deplat up` first",
                    )
            note = "final snapshot before the purge"
            emit(Event(EventKind.SITE_OP, note, site=site.name, data={"op": "snapshot"}))
            found.taken[site.name] = data.back_up(spec, site.name, emit, secrets=secrets)
        except DeplatError as exc:
            reason = secrets.masker.text(exc.message + (f" ({exc.hint})" if exc.hint else ""))
            found.refused[site.name] = f"no final snapshot of its data, so nothing was purged: {reason}"
        except Exception as exc:  # a bug in one site's backup must not purge it unsaved
            reason = secrets.masker.text(f"{type(exc).__name__}: {exc}")
            found.refused[site.name] = f"no final snapshot of its data, so nothing was purged: {reason}"
    return found
