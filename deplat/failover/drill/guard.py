"""What must hold before a drill touches anything, and the locks it holds while it runs.

A drill refuses at once (exit 2, nothing changed) when:
- the site is not the primary, not a local site, or there is no standby to fail over to;
- another drill runs for the spec (lock ``drill``), a watcher runs (watchers hold ``watch`` shared,
  a drill holds it exclusive: neither can start while the other runs), or another operation holds
  the spec's ``operation`` lock;
- and while it runs, the drill holds the ``operation`` lock itself, lent to its own watcher and
  failovers (``oplock.hold(lend=True)``): a failover, a rejoin, ``up`` or ``destroy`` started by
  another process meanwhile is refused at once, naming the drill;
- a failover is unfinished (its journal has no end): a drill never adopts it, since its figures
  would be another operation's and its restore may be skipped; the operator finishes it first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from deplat import oplock
from deplat.errors import InputError
from deplat.failover.faults import MODES
from deplat.providers import provider_of

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec
    from deplat.state import Active


def check_request(spec: Spec, active: Active, site: str, mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"unknown fault mode '{mode}'", hint=f"one of: {', '.join(MODES)}")
    names = [s.name for s in spec.sites]
    if site not in names:
        raise InputError(f"--site {site}: no such site", hint=f"sites: {', '.join(names)}")
    if site != active.primary:
        raise InputError(
            f"a drill suspends the primary; {site} is not the primary ({active.primary} is)",
            hint=f"run `deplat drill` without --site, or with --site {active.primary}",
        )
    if not provider_of(spec.site(site)).capabilities.runs_locally:
        raise InputError(
            f"site {site} is a {spec.site(site).provider.value} site: drills run on local sites",
            hint="rehearse on a spec whose sites are local (see examples/guestbook)",
        )
    if not any(svc.health is not None for svc in spec.services.values()):
        raise InputError(
            "a drill measures the RTO as users see it, through a health check: no service declares one",
            hint="add `health: {port: ..., path: ...}` to the service users reach",
        )
    if not [s for s in spec.sites if s.name != site and s.name not in active.fenced]:
        raise InputError("no standby site to fail over to (every other site is fenced)")


def check_no_unfinished_failover(spec: Spec, secrets: SecretStore) -> None:
    from deplat.failover.journal import Journal

    journal = Journal.newest_unfinished(spec, secrets.masker)
    if journal is not None:
        move = f"{journal.begin.get('from')} -> {journal.begin.get('to')}"
        raise InputError(
            f"a failover ({move}, journal {journal.id}) is unfinished: a drill does not start on top of it",
            hint="finish it with `deplat failover --resume` (or wait for the process running it), then drill",
        )


@contextlib.contextmanager
def exclusive(spec: Spec, command: str) -> Iterator[None]:
    """Hold the spec's operation and drill locks and keep watchers out, for the whole drill."""
    with (
        oplock.hold(spec, "operation", command, hint="wait for it to finish, then drill", lend=True),
        oplock.hold(spec, "drill", command, hint="wait for the other drill to finish"),
        oplock.hold(
            spec,
            "watch",
            command,
            hint="a drill runs its own watcher: stop `deplat watch` for this spec first",
        ),
    ):
        yield
