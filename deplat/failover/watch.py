"""The watcher: probe every site on the policy's interval, back up the primary, fail over by itself.

Each cycle (every ``failover.probe_interval`` seconds, fixed rate):

1. re-read the active set (another watcher or an operator may have failed over: adopt it);
2. probe every site that is not fenced, concurrently (cold standbys are not probed: nothing runs
   there); a site once classified ``suspended`` is probed without its control-plane check, so its
   provider's API is never called again;
3. feed each probe to the site's hysteresis (N failures to go down, M successes to come back);
4. start a backup of the primary's data every ``backups.interval`` seconds, in the background, only
   while the primary's last probe was healthy;
5. when ``failover.auto`` and the primary's verdict is ``down`` or ``suspended``: pick the first
   standby (spec order) whose verdict is ``up`` (else a cold standby, which the failover stands up
   and refuses unless it turns healthy) and run the failover, unless the last failover was less
   than ``failover.min_interval`` ago. Never to a site that is not up; never back to a fenced site.

Two watchers at once: both may decide; the traffic switch's compare-and-swap lets exactly one
switch; the other sees ``already`` (same target: it fences under a lock, finding it done) or
``conflict`` (another target won: it holds its own decisions and adopts the new primary).

Every event also goes, as a JSON line, to the timeline log (``.deplat/watch.log`` by default).
``stop()`` (the CLI calls it on SIGTERM/SIGINT) ends the loop after the current cycle; a failover
under way finishes its step sequence first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat import oplock
from deplat.errors import DeplatError, FilesystemError, InputError
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import data
from deplat.failover.addresses import known_addresses, remember_addresses
from deplat.failover.journal import Journal
from deplat.failover.run import run_failover
from deplat.failover.steps import DriverFactory
from deplat.files import private_dir
from deplat.paths import paths
from deplat.providers import provider_of
from deplat.sites import Addresses, driver_for
from deplat.spec.model import Role, Spec
from deplat.state import load_active

if TYPE_CHECKING:
    from deplat.failover.hysteresis import Verdict
    from deplat.failover.probe import SiteProbe
    from deplat.failover.run import FailoverResult
    from deplat.secrets import SecretStore

CONFLICT_HOLD = 30.0  # seconds to wait for the winner of a conflict to record the new primary
LOG_RETRY = 30.0  # seconds between attempts to write the timeline log again after a full disk
PARTIAL_RETRY = 10.0  # seconds between attempts to finish a partial DNS switch
PROBE_RETRIES = 1  # a failed probe is asked again this many times within its cycle before it counts


def watch_log_path(spec: Spec) -> Path:
    return paths(spec).watch_log


class TimelineLog:
    """Append-only JSON lines (owner-only), secret values masked; one line per event.

    A log that cannot be written (disk full, read-only) never stops the watcher: it stops logging,
    says so once (``degraded``), and tries again every ``LOG_RETRY`` seconds.
    """

    def __init__(self, path: Path | None, secrets: SecretStore, clock: Any = time.monotonic) -> None:
        self.path = path
        self.secrets = secrets
        self.clock = clock
        self.degraded: str | None = None  # why the log is not written now
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def write(self, event: Event) -> str | None:
        """Append ``event``; returns a message when the log just stopped working, else None."""
        if self.path is None:
            return None
        record = self.secrets.masker.data(event.to_dict())
        line = (json.dumps(record, default=str) + "\n").encode("utf-8")
        with self._lock:
            if self.degraded is not None and self.clock() < self._retry_at:
                return None
            try:
                private_dir(self.path.parent)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    size = os.fstat(fd).st_size
                    try:
                        os.write(fd, line)
                    except OSError:
                        os.ftruncate(fd, size)  # never a torn line in the middle of the log
                        raise
                finally:
                    os.close(fd)
            except (OSError, FilesystemError) as exc:
                first = self.degraded is None
                self.degraded = str(exc.message if isinstance(exc, FilesystemError) else exc.strerror or exc)
                self._retry_at = self.clock() + LOG_RETRY
                return self.degraded if first else None
            self.degraded = None
            return None


@dataclass
class WatchSummary:
    cycles: int = 0
    failovers: list[dict[str, Any]] = field(default_factory=list)
    backups: int = 0
    primary: str = ""
    stopped_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "failovers": self.failovers,
            "backups": self.backups,
            "primary": self.primary,
            "stopped_by": self.stopped_by,
        }


class Watcher:
    def __init__(
        self,
        spec: Spec,
        secrets: SecretStore,
        *,
        emit: Emit = discard,
        log_path: Path | bool | None = True,
        drivers: DriverFactory | None = None,
        name: str = "watch",
        clock: Any = time.monotonic,
        keep_front_door: bool = True,
    ) -> None:
        from deplat.failover.hysteresis import Hysteresis

        self.spec = spec
        self.secrets = secrets
        self.policy = spec.failover
        self.drivers: DriverFactory = drivers or (lambda site: driver_for(spec, site, secrets))
        self.name = name
        self.clock = clock  # monotonic: schedules never follow a wall-clock jump
        self.keep_front_door = keep_front_door
        self._emit_outer = emit
        path = watch_log_path(spec) if log_path is True else (log_path or None)
        self.log = TimelineLog(path if isinstance(path, Path) else None, secrets, clock)
        self.hysteresis = Hysteresis(self.policy.failures_to_down, self.policy.successes_to_up)
        self.stopped = threading.Event()
        self.summary = WatchSummary()
        self.last_probe: dict[str, SiteProbe] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.suspended: set[str] = set()  # classified suspended: its provider is never called again
        self._addresses: dict[str, Addresses] = {}
        self._fail_streak_start: dict[str, float] = {}
        self._last_backup_at: float | None = None  # on ``clock``
        self._backup_thread: threading.Thread | None = None
        self._hold_until = 0.0
        self._held_reason = ""
        self._partial_retry_at = 0.0
        self._degraded = ""  # the last filesystem problem reported (reported once)
        self.fenced_healthy: set[str] = set()  # fenced sites that answer healthy again (reported)

    # -- events ------------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        problem = self.log.write(event)
        self._emit_outer(event)
        if problem:
            self._emit_outer(
                Event(
                    EventKind.WATCH_ERROR,
                    f"the timeline log cannot be written ({problem}): logging paused, watching goes on",
                    data={"watcher": self.name, "degraded": "log", "error": problem},
                )
            )

    def _say(self, kind: EventKind, message: str, site: str | None = None, **data: Any) -> None:
        self.emit(Event(kind, message, site=site, data={"watcher": self.name, **data}))

    # -- lifecycle ---------------------------------------------------------------------------------
    def stop(self, reason: str = "stop") -> None:
        if not self.stopped.is_set():
            self.summary.stopped_by = reason
        self.stopped.set()

    def run(self, *, max_cycles: int | None = None, max_seconds: float | None = None) -> WatchSummary:
        """Watch until ``stop()`` (or the given bounds); returns what happened. Bad input (the spec,
        a secret, the backup store) raises ``InputError`` before the first cycle or when a cycle
        meets it: a watcher never repeats the same input error every cycle. A full or read-only disk
        does not stop it: it says so once and goes on watching (and failing over)."""
        data.check(self.spec)
        self._keep_front_door(starting=True)
        return self._run(max_cycles, max_seconds)

    def _keep_front_door(self, starting: bool = False) -> None:
        """Start the front door process if it does not run (``up`` predates it, or it was stopped;
        its supervisor restarts a door that died). The watcher only switches it: it keeps serving
        when the watcher stops."""
        if not self.keep_front_door:
            return
        from deplat.failover import frontdoor_process

        before = frontdoor_process.running(self.spec)
        try:
            door = frontdoor_process.ensure_running(self.spec)
        except InputError as exc:
            if starting and not isinstance(exc, FilesystemError):
                raise
            self._say(EventKind.WATCH_ERROR, f"front door: {exc.message}", degraded="front_door")
            return
        if door is not None and door.pid and (before is None or before.pid != door.pid):
            self._say(EventKind.WATCH_FRONTDOOR, f"front door at {', '.join(door.urls)}", pid=door.pid)

    def _run(self, max_cycles: int | None, max_seconds: float | None) -> WatchSummary:
        interval = self.policy.probe_interval
        started = time.monotonic()
        active = load_active(self.spec)
        self._say(
            EventKind.WATCH_START,
            f"watching {len(self.spec.sites)} sites every {interval:g}s; primary {active.primary}",
            site=active.primary,
            interval=interval,
            failures_to_down=self.policy.failures_to_down,
            auto=self.policy.auto,
        )
        next_at = time.monotonic()
        try:
            while not self.stopped.is_set():
                try:
                    self.cycle()
                except FilesystemError as exc:  # degrade: say it once, keep watching
                    if exc.message != self._degraded:
                        self._degraded = exc.message
                        hint = f" ({exc.hint})" if exc.hint else ""
                        self._say(EventKind.WATCH_ERROR, f"{exc.message}{hint}", degraded="filesystem")
                except InputError:
                    self.stop("input error")
                    raise
                except Exception as exc:  # a long-running watcher reports a bad cycle and goes on
                    message = self.secrets.masker.text(f"{type(exc).__name__}: {exc}")
                    self._say(EventKind.WATCH_ERROR, f"cycle failed: {message}")
                self.summary.cycles += 1
                if max_cycles is not None and self.summary.cycles >= max_cycles:
                    self.stop("max_cycles")
                    break
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    self.stop("max_seconds")
                    break
                next_at += interval
                now = time.monotonic()
                if next_at < now:  # a slow cycle (probe timeouts, a failover): no burst to catch up
                    next_at = now
                self.stopped.wait(next_at - now)
        finally:
            if self._backup_thread is not None:
                self._backup_thread.join(timeout=30)
            with contextlib.suppress(FilesystemError):
                self.summary.primary = load_active(self.spec).primary
            self._say(
                EventKind.WATCH_STOP,
                f"stopped ({self.summary.stopped_by or 'stop'})",
                **self.summary.to_dict(),
            )
        return self.summary

    # -- one cycle ---------------------------------------------------------------------------------
    def cycle(self) -> dict[str, Verdict]:
        self._keep_front_door()
        self._resume_orphan()
        active = load_active(self.spec)
        watched = [
            s
            for s in self.spec.sites
            if s.name not in active.fenced and (s.role is not Role.cold or s.name == active.primary)
        ]
        fenced = [name for name in active.fenced if known_addresses(self.spec, name) is not None]
        from deplat.failover.probe import run_sync

        probes = run_sync(self._probe_all([s.name for s in watched] + fenced))
        for probe in probes:
            if probe.site in active.fenced:
                self._observe_fenced(probe, active.fenced[probe.site])
            else:
                self._observe(probe, active.primary)
        self._maybe_backup(active.primary)
        primary = self.verdicts.get(active.primary)
        if (
            primary is not None
            and primary.state in ("down", "suspended")
            and active.primary not in active.fenced
        ):
            self._maybe_fail_over(active.primary, primary)
        return dict(self.verdicts)

    def _site_addresses(self, site: str) -> Addresses:
        if site in self._addresses:
            return self._addresses[site]
        addresses = known_addresses(self.spec, site)
        if addresses is None and site not in self.suspended:
            site_obj = self.spec.site(site)
            addresses = self.drivers(site_obj).addresses(site_obj)
            remember_addresses(self.spec, site, addresses)
        addresses = addresses or Addresses()
        self._addresses[site] = addresses
        return addresses

    async def _probe_all(self, sites: list[str]) -> list[SiteProbe]:
        from deplat.failover.probe import probe_site

        fenced = set(load_active(self.spec).fenced)

        async def one(site: str) -> SiteProbe:
            addresses = await asyncio.to_thread(self._site_addresses, site)
            attempts = 0
            while True:  # one failed probe may be a lost packet: ask again before counting it
                attempts += 1
                probe = await probe_site(
                    self.spec,
                    site,
                    addresses,
                    timeout=self.policy.timeout,
                    secrets=self.secrets,
                    # a fenced or suspended site's provider is never called again
                    control_plane=site not in self.suspended and site not in fenced,
                )
                if probe.health.value in ("healthy", "suspended") or attempts > PROBE_RETRIES:
                    probe.attempts = attempts
                    return probe

        return list(await asyncio.gather(*(one(s) for s in sites)))

    def _observe(self, probe: SiteProbe, primary: str) -> None:
        self.last_probe[probe.site] = probe
        healthy = probe.health.value == "healthy"
        if healthy:
            self._fail_streak_start.pop(probe.site, None)
        elif probe.health.value in ("down", "suspended"):
            self._fail_streak_start.setdefault(probe.site, probe.at)
        verdict = self.hysteresis.observe(probe)
        self.verdicts[probe.site] = verdict
        if not healthy:
            self._say(
                EventKind.WATCH_PROBE,
                f"{probe.site}: {probe.health.value}: {probe.reason}",
                site=probe.site,
                health=probe.health.value,
                reason=probe.reason,
                probe_at=probe.at,
                primary=probe.site == primary,
                failures=verdict.failures,
            )
        if verdict.changed:
            if verdict.state == "suspended":
                self.suspended.add(probe.site)
            self._say(
                EventKind.WATCH_VERDICT,
                f"{probe.site} is {verdict.state}",
                site=probe.site,
                state=verdict.state,
                primary=probe.site == primary,
                probe_at=probe.at,
                since=self._fail_streak_start.get(probe.site),
            )

    def _observe_fenced(self, probe: SiteProbe, fenced: dict[str, Any]) -> None:
        """A fenced site that answers healthy again (a false failover, a provider that came back):
        say so once; ``deplat rejoin`` brings it back as a standby."""
        if probe.health.value != "healthy":
            self.fenced_healthy.discard(probe.site)
            return
        if probe.site in self.fenced_healthy:
            return
        self.fenced_healthy.add(probe.site)
        self._say(
            EventKind.WATCH_FENCED_HEALTHY,
            f"{probe.site} is fenced ({fenced.get('reason', 'a failover')}) but answers healthy again: "
            f"`deplat rejoin {probe.site}` brings it back as a standby",
            site=probe.site,
            fenced=fenced,
        )

    # -- backups -----------------------------------------------------------------------------------
    def _maybe_backup(self, primary: str) -> None:
        if not data.has_data(self.spec):
            return
        if not provider_of(self.spec.site(primary)).capabilities.runs_locally:
            return  # a cloud primary backs itself up on its own timers (stacks/bootstrap.py)
        last = self.last_probe.get(primary)
        if last is None or last.health.value != "healthy":
            return
        if self._backup_thread is not None and self._backup_thread.is_alive():
            return
        now = self.clock()  # monotonic: a wall-clock step back never delays a backup
        if self._last_backup_at is not None and now - self._last_backup_at < self.spec.backups.interval:
            return
        self._last_backup_at = now
        self._backup_thread = threading.Thread(
            target=self._backup, args=(primary,), name=f"backup-{primary}", daemon=True
        )
        self._backup_thread.start()

    def _backup(self, primary: str) -> None:
        started = time.time()
        try:
            backups = data.back_up(self.spec, primary, self.emit)
        except Exception as exc:  # reported (a full disk included); the next interval tries again
            message = exc.message if isinstance(exc, DeplatError) else f"{type(exc).__name__}: {exc}"
            self._say(EventKind.WATCH_BACKUP_FAILED, f"backup of {primary} failed: {message}", site=primary)
            return
        self.summary.backups += 1
        self._say(
            EventKind.WATCH_BACKUP,
            f"backed up {primary}: {len(backups)} services",
            site=primary,
            started_at=started,
            taken_at=min((b["taken_at"] for b in backups), default=started),
            backups=backups,
        )

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
        except InputError as exc:
            if not isinstance(exc, FilesystemError):
                raise  # bad input stops the watcher (exit 2), it does not repeat every cycle
            hold = max(5.0, 2 * self.policy.probe_interval * self.policy.failures_to_down)
            self._hold_until = self.clock() + hold
            self._say(
                EventKind.WATCH_FAILOVER_FAILED,
                f"failover to {target} did not complete: {exc.message}; next try in {hold:g}s or later",
                site=target,
            )
            return None
        except DeplatError as exc:
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
