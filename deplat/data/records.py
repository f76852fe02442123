"""What a backup and a restore report: one record per service, the same for local and cloud sites."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Backup:
    service: str
    site: str  # the site whose data this is
    id: str  # the restic snapshot
    taken_at: float  # wall-clock time the backup started (an upper bound of the data lost)
    location: str  # the repository holding it
    files: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Restored:
    service: str
    backup_id: str | None  # None: no backup of this service exists; nothing was written
    taken_at: float | None
    rpo_seconds: float | None  # reference_time - taken_at: the age of the restored data
    site: str | None = None  # the site the backup was taken from
    path: str = ""  # the data folder that was replaced
    files: int = 0
    bytes: int = 0
    repository: str | None = None  # where it came from
    started: bool = False  # its service was started again on the restored data (and is healthy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
