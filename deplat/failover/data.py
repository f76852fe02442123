"""The failover's one door to the app's data: back a site up, restore the newest backup onto a site.

Everything in the failover, the watcher and ``deplat rejoin`` reaches backups through these few
functions, so the backup mechanism behind them (today ``deplat.failover.backup``) can be replaced
without touching them.

An RPO is the age of the restored data at the moment the old site was lost. It is never negative:
when a clock jump makes a backup look younger than the loss, the RPO is 0 and ``clock_skew`` says so.
"""

from __future__ import annotations

from typing import Any

from deplat.events import Emit, discard
from deplat.spec.model import Spec


def has_data(spec: Spec) -> bool:
    """Does any service keep state (something to back up and restore)?"""
    return any(svc.stateful for svc in spec.services.values())


def check(spec: Spec) -> None:
    """Raise ``InputError`` now if the backup store the spec names cannot be used (before anything
    is journaled or a watcher starts)."""
    if has_data(spec):
        from deplat.failover.backup import make_store

        make_store(spec)


def back_up(spec: Spec, site: str, emit: Emit = discard) -> list[dict[str, Any]]:
    """Back up every stateful service of ``site``; one dict per backup (``taken_at`` among them)."""
    from deplat.failover.backup import backup_site, make_store

    return [b.to_dict() for b in backup_site(spec, site, make_store(spec), emit)]


def restore(spec: Spec, site: str, *, reference_time: float, emit: Emit = discard) -> list[dict[str, Any]]:
    """Restore the newest backup of every stateful service onto ``site``; one dict per service with
    ``backup_id`` (None: nothing to restore), ``taken_at`` and ``rpo_seconds`` (never negative)."""
    from deplat.failover.backup import make_store, restore_site

    restored = [
        r.to_dict()
        for r in restore_site(spec, site, make_store(spec), reference_time=reference_time, emit=emit)
    ]
    for item in restored:
        rpo = item.get("rpo_seconds")
        if rpo is not None and rpo < 0:
            item["rpo_seconds"] = 0.0
            item["clock_skew"] = round(-rpo, 3)
    return restored
