"""The primary's lease in the backup repositories: which site may write backups now.

A failover writes a small marker snapshot to every repository the sites' backup timers write to:
tag ``deplat=primary``, host = the new primary, ``seq=N`` (one more than the newest marker in any
repository that answers). The timers' backup script (``stacks/site_backups.py``) reads the newest
marker before each backup and backs nothing up when it names another site. So an old primary whose
provider lifts a suspension, with timers nobody could switch off while it was unreachable, never
adds its stale data as the newest snapshot. No marker yet (no failover so far): every primary backs
up. Markers carry no ``service`` tag, so no service's snapshots, order or retention see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deplat.data.restic import Repository, Restic, ResticFailed, Snapshot, order
from deplat.transport.base import Transport, TransportError

TAG = "deplat=primary"
MARKER_FILE = ".deplat-primary"


def holder(markers: list[Snapshot]) -> Snapshot | None:
    """The newest marker (by sequence, then time: a clock jump cannot reorder them)."""
    return max(markers, key=order) if markers else None


@dataclass
class Granted:
    site: str
    seq: int
    written: list[str] = field(default_factory=list)  # repositories that hold the new marker
    skipped: dict[str, str] = field(default_factory=dict)  # repository -> why not

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "seq": self.seq, "written": self.written, "skipped": self.skipped}


def grant(repos: list[Repository], password: str, transport: Transport, *, app: str, site: str) -> Granted:
    """Name ``site`` the primary in every repository that answers (best effort: a repository that
    does not answer is named in ``skipped``; its timers' scripts then read the others)."""
    seen: list[Snapshot] = []
    answered: list[Repository] = []
    skipped: dict[str, str] = {}
    for repo in repos:
        restic = Restic(repo, password, transport)
        try:
            restic.init()
            seen += restic.snapshots(app=app, tag=TAG)
            answered.append(repo)
        except (ResticFailed, TransportError) as exc:
            skipped[repo.name] = exc.message
    granted = Granted(site, 1 + max((s.seq or 0 for s in seen), default=0))
    for repo in answered:
        try:
            Restic(repo, password, transport).note(
                site=site,
                app=app,
                tags=[TAG, f"seq={granted.seq}"],
                filename=MARKER_FILE,
                content=f"{site} is the primary\n".encode(),
            )
            granted.written.append(repo.name)
        except (ResticFailed, TransportError) as exc:
            skipped[repo.name] = exc.message
    granted.skipped = skipped
    return granted
