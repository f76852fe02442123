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

This module holds the loop, the probes and the backups; ``watch_failover`` the decisions and the
failovers (step 5 and unfinished failovers); ``watch_log`` the timeline log and the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, FilesystemError, InputError
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import data
from deplat.failover.addresses import known_addresses, remember_addresses
from deplat.failover.steps import DriverFactory
from deplat.failover.watch_failover import FailingOver
from deplat.failover.watch_log import TimelineLog, WatchSummary, watch_log_path
from deplat.providers import provider_of
from deplat.sites import Addresses, driver_for
from deplat.spec.model import Role, Spec
from deplat.state import load_active

__all__ = ["TimelineLog", "WatchSummary", "Watcher", "watch_log_path"]

if TYPE_CHECKING:
    from deplat.failover.hysteresis import Verdict
    from deplat.failover.probe import SiteProbe
    from deplat.secrets import SecretStore

PROBE_RETRIES = 1  # a failed probe is asked again this many times within its cycle before it counts


class Watcher(FailingOver):
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
