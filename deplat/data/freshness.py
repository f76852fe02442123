"""Are the backups fresh? ``deplat doctor`` warns when a stateful service's newest snapshot is older
than ``STALE_INTERVALS`` backup intervals (the timers on the primary stopped, a repository fills up,
credentials expired): a failover then would lose more than the spec promises.

Read from the repositories directly, like ``deplat backups`` (``repositories.survey``: each within
its own deadline), never from a site: the question must be answerable while the primary is gone.
A repository that does not answer is named as skipped; the newest snapshot across those that do
answer counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deplat.errors import DeplatError

if TYPE_CHECKING:
    from deplat.engine.doctor import Check
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

STALE_INTERVALS = 3


@dataclass
class Freshness:
    interval: float
    ages: dict[str, float | None] = field(default_factory=dict)  # service -> newest's age; None: none
    skipped: dict[str, str] = field(default_factory=dict)  # repository -> why
    error: str | None = None  # nothing could be asked (no password, a missing key)
    hint: str | None = None

    def stale(self) -> list[str]:
        limit = STALE_INTERVALS * self.interval
        return [s for s, age in self.ages.items() if age is None or age > limit]


def survey(spec: Spec, secrets: SecretStore, now: float | None = None) -> Freshness | None:
    """Each stateful service's newest snapshot age; None when no service is stateful."""
    from deplat.data import repositories as repos
    from deplat.transport import DirectTransport

    stateful = [name for name, svc in spec.services.items() if svc.stateful]
    result = Freshness(spec.backups.interval)
    if not stateful:
        return None
    try:
        password = repos.password(spec, secrets)
        found = repos.repositories(spec, secrets)
    except DeplatError as exc:
        result.error, result.hint = exc.message, exc.hint
        return result
    states = repos.survey(found, password, DirectTransport(spec.base_dir), app=spec.app)
    now = time.time() if now is None else now
    result.skipped = {
        s.repository: secrets.masker.text(s.error or "no answer") for s in repos.unreachable(states)
    }
    for name in stateful:
        snap = repos.newest(states, name)
        result.ages[name] = None if snap is None else snap.age(now)
    return result


def checks(spec: Spec, secrets: SecretStore, now: float | None = None) -> list[Check]:
    """``deplat doctor``'s rows: one per stateful service (a warning when stale), one per skipped
    repository; one naming the secret when the password or a key is missing. Warnings only
    (``required=False``): stale backups do not stop an ``up``."""
    from deplat.engine.doctor import Check

    found = survey(spec, secrets, now)
    if found is None:
        return []
    if found.error:  # a missing password or key: nothing can be read, say which
        return [Check("backups", False, found.error, found.hint, required=False)]
    limit = STALE_INTERVALS * found.interval
    rows = []
    for service, age in found.ages.items():
        if age is None:
            detail = "no snapshot in any repository that answered"
        else:
            detail = f"newest snapshot {age_text(age)} old ({STALE_INTERVALS} intervals: {age_text(limit)})"
        ok = age is not None and age <= limit
        hint = None if ok else "are the backup timers running on the primary? `deplat backups` lists them"
        rows.append(Check(f"backups {service}", ok, detail, hint, required=False))
    for repository, why in found.skipped.items():
        rows.append(Check(f"repository {repository}", False, f"skipped: {why}", required=False))
    return rows


def age_text(seconds: float) -> str:
    """A snapshot's age in a few characters (``45s``, ``12 min``, ``3.5 h``, ``2.0 d``)."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
