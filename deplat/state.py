"""The active set: which site serves now, and which sites are fenced (never called again).

The spec says who is primary at the start; failovers change that. This small JSON file,
``.deplat/active.json``, is the truth after the first failover. Writes are atomic (write a temp
file, fsync, rename), so a crash never leaves it half-written; a corrupt one is reported as a
``FilesystemError`` naming it. Changes go under ``active_lock`` (fencing, adopting a new primary,
a rejoin), so two processes never lose each other's change.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import FilesystemError
from deplat.files import exclusive_lock, read_json, write_json_atomic
from deplat.paths import paths

if TYPE_CHECKING:
    from deplat.spec.model import Spec


@dataclass
class Active:
    primary: str
    fenced: dict[str, dict[str, Any]] = field(default_factory=dict)  # site -> {reason, at}
    last_failover_at: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def role_of(self, spec: Spec, site: str) -> str:
        """The site's current role: primary, its spec role for standbys, or fenced."""
        if site in self.fenced:
            return "fenced"
        if site == self.primary:
            return "primary"
        role = spec.site(site).role.value
        return "warm" if role == "primary" else role


def active_path(spec: Spec) -> Path:
    return paths(spec).active


def active_lock(spec: Spec) -> AbstractContextManager[int]:
    """Serialises changes to the active set across processes."""
    return exclusive_lock(paths(spec).active_lock)


def load_active(spec: Spec) -> Active:
    """The active set; the spec's primary when none is saved. A corrupt ``active.json`` (not JSON,
    or not the shape deplat writes) raises ``FilesystemError`` naming the file and the fix."""
    return read_active(active_path(spec), {s.name for s in spec.sites}, spec.primary.name)


def read_active(path: Path, names: set[str], spec_primary: str) -> Active:
    """``load_active`` from the file ``path`` of a spec whose sites are ``names``."""
    data = read_json(path)
    if data is None:
        return Active(primary=spec_primary)
    fenced = data.get("fenced", {}) if isinstance(data, dict) else None
    history = data.get("history", []) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(fenced, dict) or not isinstance(history, list):
        raise FilesystemError(
            f"{path} is corrupt: not the active set deplat writes",
            hint=f"move {path} aside and rerun (the spec's primary is then taken as the serving site)",
        )
    if data.get("primary") not in names:  # the spec changed under us: the spec wins
        return Active(primary=spec_primary)
    return Active(
        primary=data["primary"],
        fenced={k: v for k, v in fenced.items() if k in names},
        last_failover_at=data.get("last_failover_at"),
        history=list(history),
    )


def save_active(spec: Spec, active: Active) -> None:
    write_json_atomic(active_path(spec), asdict(active))


def record_failover(spec: Spec, old: str, new: str, reason: str) -> Active:
    """Make ``new`` the primary and fence ``old``; returns the saved active set."""
    active = load_active(spec)
    now = time.time()
    active.fenced[old] = {"reason": reason, "at": now}
    active.fenced.pop(new, None)
    active.primary = new
    active.last_failover_at = now
    active.history.append({"from": old, "to": new, "reason": reason, "at": now})
    save_active(spec, active)
    return active


def record_rejoin(spec: Spec, site: str) -> Active:
    """``site`` is no longer fenced: it is a standby again (its spec role, or warm)."""
    with active_lock(spec):
        active = load_active(spec)
        if active.fenced.pop(site, None) is not None:
            active.history.append({"rejoined": site, "at": time.time()})
            save_active(spec, active)
        return active
