"""The watcher's decisions to fail over, and its failovers: pick the target, hold (once per reason)
when it must not move, run the failover, adopt or supersede one a dead process left unfinished, and
finish one whose switch had started (or was ``partial``). A part of ``Watcher``
(``deplat.failover.watch``), whose state it uses: see the attributes declared below."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deplat import oplock
from deplat.errors import DeplatError, FilesystemError, InputError
from deplat.events import Event, EventKind
from deplat.failover.journal import Journal
from deplat.failover.run import run_failover
from deplat.spec.model import Role
from deplat.state import load_active

if TYPE_CHECKING:
    from deplat.failover.hysteresis import Hysteresis, Verdict
    from deplat.failover.run import FailoverResult
    from deplat.failover.steps import DriverFactory
    from deplat.failover.watch_log import WatchSummary
    from deplat.secrets import SecretStore
    from deplat.sites import Addresses
    from deplat.spec.model import FailoverPolicy, Spec

CONFLICT_HOLD = 30.0  # seconds to wait for the winner of a conflict to record the new primary
PARTIAL_RETRY = 10.0  # seconds between attempts to finish a partial DNS switch


class FailingOver:
    """The failover half of ``Watcher`` (a mixin: the watcher sets these attributes)."""

    spec: Spec
    secrets: SecretStore
    policy: FailoverPolicy
    drivers: DriverFactory
    name: str
    clock: Any
    summary: WatchSummary
    hysteresis: Hysteresis
    verdicts: dict[str, Verdict]
    suspended: set[str]
    _addresses: dict[str, Addresses]
    _fail_streak_start: dict[str, float]
    _hold_until: float
    _held_reason: str
    _partial_retry_at: float

    emit: Callable[[Event], None]
    _say: Callable[..., None]  # (kind, message, site=None, **data)

    # -- failing over ------------------------------------------------------------------------------
    def _choose_target(self, primary: str) -> str | None:
        active = load_active(self.spec)
        standbys = [s for s in self.spec.sites if s.name != primary and s.name not in active.fenced]
        for site in standbys:
            verdict = self.verdicts.get(site.name)
            if site.role is not Role.cold and verdict is not None and verdict.state == "up":
                return site.name
        for site in standbys:
            if site.role is Role.cold and site.name not in self.suspended:
                return site.name
        return None

    def _hold(self, message: str, key: str | None = None, **data: Any) -> None:
        """Say why the watcher is not failing over, once per reason (``key``) rather than every cycle."""
        key = key or message
        if key != self._held_reason:
            self._held_reason = key
            self._say(EventKind.WATCH_HOLD, message, **data)

    def _maybe_fail_over(self, primary: str, verdict: Verdict) -> None:
        if not self.policy.auto:
            self._hold(f"{primary} is {verdict.state}; failover.auto is off: run `deplat failover`")
            return
        active = load_active(self.spec)
        now = time.time()
        if self.clock() < self._hold_until:
            self._hold("holding: a failover just failed or lost the switch to another watcher")
            return
        if active.last_failover_at and now - active.last_failover_at < self.policy.min_interval:
            ago = now - active.last_failover_at
            left = self.policy.min_interval - ago
            self._hold(
                f"{primary} is {verdict.state} but the last failover was {ago:.0f}s "
                f"ago (failover.min_interval {self.policy.min_interval:g}s): holding {left:.0f}s more",
                key="min_interval",
            )
            return
        target = self._choose_target(primary)
        if target is None:
            self._hold(f"{primary} is {verdict.state} and no standby is healthy: not failing over")
            return
        self._held_reason = ""
        reference = self._fail_streak_start.get(primary, now)
        self._say(
            EventKind.WATCH_DECISION,
            f"{primary} is {verdict.state}: failing over to {target}",
            site=target,
            from_site=primary,
            to_site=target,
            state=verdict.state,
            lost_at=reference,
        )
        result = self._fail_over(primary, target, verdict.state, reference)
        if result is None:
            return
        self.summary.failovers.append(
            {k: v for k, v in result.to_dict().items() if k in ("outcome", "from_site", "to_site", "ok")}
        )
        if result.outcome == "conflict":
            self._hold_until = self.clock() + CONFLICT_HOLD
        elif result.outcome in ("done", "already", "unverified", "partial"):
            self.hysteresis.reset(primary)
            self._addresses.pop(primary, None)

    def _adopt_unfinished(self, primary: str, target: str) -> bool:
        """A failover left unfinished by a process that died: resume it when it is this very move,
        else close it as superseded (so that a later ``--resume`` does not replay a stale move)."""
        journal = Journal.newest_unfinished(self.spec, self.secrets.masker)
        if journal is None or journal.live_owner() is not None:
            return False
        if journal.begin.get("from") == primary and journal.begin.get("to") == target:
            self._say(EventKind.WATCH_RESUME, f"resuming the unfinished failover {journal.id}", site=target)
            return True
        journal.end("superseded", {"by": self.name, "from": primary, "to": target})
        return False

    def _fail_over(self, primary: str, target: str, state: str, reference: float) -> FailoverResult | None:
        resume = self._adopt_unfinished(primary, target)
        try:
            return run_failover(
                self.spec,
                self.secrets,
                to=None if resume else target,
                from_=None if resume else primary,
                resume=resume,
                reason=f"{self.name}: {primary} {state}",
                reference_time=reference,
                emit=self.emit,
                drivers=self.drivers,
                abandon_on_failure=True,  # the next cycle decides afresh; nothing left to --resume
            )
        except oplock.Busy as exc:  # another process fails over (or drills) now: see next cycle
            self._hold(exc.message, key="busy")
            return None
        except DeplatError as exc:
            if isinstance(exc, InputError) and not isinstance(exc, FilesystemError):
                raise  # bad input stops the watcher (exit 2), it does not repeat every cycle
            hold = max(5.0, 2 * self.policy.probe_interval * self.policy.failures_to_down)
            self._hold_until = self.clock() + hold
            self._say(
                EventKind.WATCH_FAILOVER_FAILED,
                f"failover to {target} did not complete: {exc.message}; next try in {hold:g}s or later",
                site=target,
            )
            return None

    # -- unfinished failovers ------------------------------------------------------------------------
    def _resume_orphan(self) -> None:
        """Finish a failover whose traffic switch had started when its process died (the traffic may
        already be on the new site), or a ``partial`` one whose DNS providers may be back."""
        journal = Journal.newest_unfinished(self.spec, self.secrets.masker)
        if journal is None or not journal.started("switch") or journal.live_owner() is not None:
            return
        partial = journal.outcome == "partial"
        if partial and self.clock() < self._partial_retry_at:
            return
        self._partial_retry_at = self.clock() + PARTIAL_RETRY
        what = "finishing the partial DNS switch of" if partial else "resuming the unfinished failover"
        self._say(EventKind.WATCH_RESUME, f"{what} {journal.id}", site=str(journal.begin.get("to")))
        try:
            result = run_failover(
                self.spec,
                self.secrets,
                resume=True,
                emit=self.emit,
                drivers=self.drivers,
                abandon_on_failure=not partial,
            )
        except oplock.Busy as exc:
            self._hold(exc.message, key="busy")
            return
        except InputError as exc:
            if not isinstance(exc, FilesystemError):
                raise
            self._say(EventKind.WATCH_FAILOVER_FAILED, f"resuming {journal.id} failed: {exc.message}")
            return
        except DeplatError as exc:
            self._say(EventKind.WATCH_FAILOVER_FAILED, f"resuming {journal.id} failed: {exc.message}")
            return
        self.summary.failovers.append(
            {k: v for k, v in result.to_dict().items() if k in ("outcome", "from_site", "to_site", "ok")}
        )
        self.hysteresis.reset(result.from_site)
        self._addresses.pop(result.from_site, None)
