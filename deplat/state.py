"""The active set: which site serves now, and which sites are fenced (never called again).

The spec says who is primary at the start; failovers change that. This small JSON file,
``.deplat/active.json``, is the truth after the first failover. Writes are atomic (write a temp
file, fsync, rename), so a crash never leaves it half-written.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deplat.files import write_json_atomic
from deplat.paths import home
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
    return home(spec) / "active.json"


def load_active(spec: Spec) -> Active:
    path = active_path(spec)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Active(primary=spec.primary.name)
    names = {s.name for s in spec.sites}
    if data.get("primary") not in names:  # the spec changed under us: the spec wins
        return Active(primary=spec.primary.name)
    return Active(
        primary=data["primary"],
        fenced={k: v for k, v in data.get("fenced", {}).items() if k in names},
        last_failover_at=data.get("last_failover_at"),
        history=list(data.get("history", [])),
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
