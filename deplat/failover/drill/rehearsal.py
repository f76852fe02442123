"""``run_drill``: lose the primary on purpose, on local sites, and measure what users would see.

1. check the request and take the locks (``guard``): nothing is touched before that;
2. stand up every site that is not cold, and the traffic switch (DNS synced to the primary, or the
   local front door started in this process);
3. start a watcher in this process (the spec's policy, ``min_interval`` ignored);
4. the app's ``drill.write`` command, if declared; wait for a backup that started after it;
5. suspend at a random point of the backup cycle (``suspend_at="random"``) or right after a fresh
   backup (``"after_backup"``, the best case), fingerprinting the primary's data just before;
6. the watcher detects, decides and fails over; a client asks the app the way users do;
7. figures (``timeline``), data check (``datacheck``), budgets;
8. cleanup: the fault is cleared, the drilled site comes back as a standby, and the primary moves
   back to it (unless ``stay``), so the app is left as it was found; every change that stays is
   listed in ``report.changes``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat import __version__
from deplat.dns.switch import dns_resolver
from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import frontdoor
from deplat.failover.addresses import known_addresses
from deplat.failover.drill import datacheck, guard, timeline
from deplat.failover.drill.outcome import Budget, DrillReport, SuspendPoint
from deplat.failover.drill.users import Client
from deplat.failover.steps import DriverFactory
from deplat.sites import driver_for
from deplat.spec.model import Role, Spec
from deplat.state import active_lock, load_active, save_active

if TYPE_CHECKING:
    from deplat.secrets import SecretStore

WATCHER = "drill"  # the name of the drill's own watcher: only its events count


@dataclass
class DrillOptions:
    site: str | None = None  # default: the primary
    mode: str = "suspended"
    suspend_at: str = "random"  # random | after_backup
    max_rto: float | None = None  # default: the spec's drill.max_rto
    max_rpo: float | None = None
    stay: bool = False  # leave the primary on the new site
    resolver: tuple[str, int] | None = None  # a caching resolver users' names go through
    timeout: float | None = None  # how long to wait for detection and failover
    report: Path | None = None  # the Markdown report (default .deplat/drills/<time>.md)
    write_report: bool = True
    junit: Path | None = None
    command: str = "deplat drill"


def run_drill(
    spec: Spec,
    secrets: SecretStore,
    options: DrillOptions | None = None,
    *,
    emit: Emit = discard,
    drivers: DriverFactory | None = None,
) -> DrillReport:
    options = options or DrillOptions()
    if options.suspend_at not in ("random", "after_backup"):
        raise InputError(f"unknown suspension point '{options.suspend_at}'", hint="random or after_backup")
    active = load_active(spec)
    site = options.site or active.primary
    guard.check_request(spec, active, site, options.mode)
    with guard.exclusive(spec, options.command):
        guard.check_no_unfinished_failover(spec, secrets)
        report = _Rehearsal(spec, secrets, options, site, emit, drivers).run()
    if options.write_report:
        from deplat.failover.drill.report import write_reports

        write_reports(spec, report, options.report, options.junit)
    _say(emit, "done", "drill finished" + ("" if report.ok else " with problems"), report.target)
    return report


def _say(emit: Emit, step: str, message: str, site: str | None = None) -> None:
    emit(Event(EventKind.DRILL_STEP, message, site=site, data={"step": step}))


def _wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class _Rehearsal:
    def __init__(
        self,
        spec: Spec,
        secrets: SecretStore,
        options: DrillOptions,
        site: str,
        emit: Emit,
        drivers: DriverFactory | None,
    ) -> None:
        self.spec, self.secrets, self.options, self.site, self.emit = spec, secrets, options, site, emit
        self.drivers = drivers
        self.factory: DriverFactory = drivers or (lambda s: driver_for(spec, s, secrets))
        self.policy = spec.failover
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.token = uuid.uuid4().hex[:12]
        self.door: frontdoor.FrontDoor | None = None
        self.was_running: dict[str, bool] = {}  # local sites, before the drill
        self.last_failover_before: float | None = None

    def say(self, step: str, message: str, site: str | None = None) -> None:
        _say(self.emit, step, message, site)

    def collect(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
        self.emit(event)

    def seen(self) -> list[Event]:
        with self.lock:
            return list(self.events)

    # -- the sequence --------------------------------------------------------------------------
    def run(self) -> DrillReport:
        from deplat.failover.faults import FaultInjector, clear_leftovers
        from deplat.failover.watch import Watcher

        spec, policy, site = self.spec, self.policy, self.site
        started = time.time()
        for name in clear_leftovers(spec):
            self.say(
                "clear", f"{name}'s provider was left suspended by a killed drill: made active again", name
            )
        stood_up = self._stand_up()
        url = self._traffic()
        report = DrillReport(
            ok=False,
            site=site,
            target=None,
            mode=self.options.mode,
            switch="front_door" if frontdoor.uses_front_door(spec) else "dns",
            url=url,
            version=__version__,
            policy=policy.model_dump(),
            ttl=None if frontdoor.uses_front_door(spec) else spec.domain.ttl,
            started_at=started,
        )
        report.notes += [f"{name} was not running: the drill stood it up" for name in stood_up]
        drill_spec = spec.model_copy(update={"failover": policy.model_copy(update={"min_interval": 0.0})})
        watcher = Watcher(drill_spec, self.secrets, emit=self.collect, drivers=self.drivers, name=WATCHER)
        watch_thread = threading.Thread(target=watcher.run, name="drill-watcher", daemon=True)
        injector = FaultInjector(spec, site, self.secrets)
        client: Client | None = None
        timeout = (
            self.options.timeout
            or (policy.probe_interval + policy.timeout) * (policy.failures_to_down + 2) + 60
        )
        try:
            watch_thread.start()
            values = {"url": self._direct_url(site), "host": spec.domain.names[0], "token": self.token}
            commands = []
            if spec.drill.write:
                run = datacheck.run_command(
                    "write", spec.drill.write, spec, values, self.secrets, spec.drill.timeout
                )
                commands.append(run)
                if not run.ok:
                    raise OperationFailed(
                        f"the app's drill.write command failed (exit {run.exit_code}): {run.output}"
                    )
                report.changes.append("the app's drill.write command added its marks to the app's data")
                self.say("write", "the app's drill.write command ran", site)
            backup_at = self._wait_for_backup(time.time())
            delay = random.uniform(0, spec.backups.interval) if self.options.suspend_at == "random" else 0.0
            resolver = self.options.resolver or dns_resolver(spec)
            client = Client(
                spec, site, policy.timeout, resolver, caching=self.options.resolver is not None
            ).start()
            client.asked.wait(2 * policy.timeout + 1)  # users were reaching the app (and caching its address)
            time.sleep(max(0.0, backup_at + delay - time.time()))
            before = datacheck.fingerprint(spec, site)
            suspended_at = time.time()
            client.count_from(suspended_at)
            injector.apply(self.options.mode)  # type: ignore[arg-type]
            report.suspend_point = SuspendPoint(
                self.options.suspend_at, round(suspended_at - backup_at, 3), spec.backups.interval
            )
            self.say("suspend", f"{site} is now {self.options.mode}", site)

            if not _wait_for(lambda: timeline.failover_finished(self.seen(), WATCHER), timeout):
                report.problems.append(f"no failover within {timeout:g} s")
            ttl_wait = float(spec.domain.ttl) if self.options.resolver is not None else 0.0
            client.wait(max(5.0, 5 * policy.timeout) + ttl_wait)
            client.stop()
            watcher.stop("drill")
            watch_thread.join(timeout=60)

            timeline.fill(report, self.seen(), suspended_at, client.view, WATCHER)
            if report.target is not None:
                services = datacheck.compare(spec, before, report.target)
                if spec.drill.check:
                    values["url"] = self._direct_url(report.target)
                    commands.append(
                        datacheck.run_command(
                            "check", spec.drill.check, spec, values, self.secrets, spec.drill.timeout
                        )
                    )
                report.data_check = datacheck.verdict(services, commands)
            else:
                report.data_check = datacheck.verdict([], commands, "no failover happened: nothing to check")
                report.data_check.ok = False
        finally:
            if client is not None:
                client.stop()
            watcher.stop("drill")
            watch_thread.join(timeout=60)
            with contextlib.suppress(Exception):
                injector.clear(restart=True)
            self._unfence(site)
        self._leave_as_found(report)
        self._forget_the_drills_failovers(report)
        self._stop_what_was_stopped(report)
        if self.door is not None:
            self.door.stop()
            report.notes.append("the front door ran inside the drill and stopped with it")
        self._judge(report)
        report.finished_at = time.time()
        return report

    # -- the pieces ----------------------------------------------------------------------------
    def _stand_up(self) -> list[str]:
        """``up`` every site that is not cold (idempotent); returns those that were not running."""
        from deplat.providers import provider_of

        active = load_active(self.spec)
        self.last_failover_before = active.last_failover_at
        stood_up = []
        self.was_running = {
            s.name: self.factory(s).status(s).running
            for s in self.spec.sites
            if provider_of(s).capabilities.runs_locally
        }
        for s in self.spec.sites:
            if s.name in active.fenced or (s.role is Role.cold and s.name != active.primary):
                continue
            driver = self.factory(s)
            running = self.was_running.get(s.name, True)
            self.say("up", f"standing up {s.name}", s.name)
            result = driver.up(s, self.emit)
            if not result.ok:
                raise OperationFailed(f"could not stand up {s.name} for the drill: {result.error}")
            if not running:
                stood_up.append(s.name)
        return stood_up

    def _traffic(self) -> str:
        """Point the traffic switch at the primary; returns where users reach the app."""
        spec, site = self.spec, self.site
        port = frontdoor.front_door_ports(spec)[0]
        if frontdoor.uses_front_door(spec):
            if not frontdoor.front_door_running(spec):
                self.door = frontdoor.FrontDoor(spec, timeout=self.policy.timeout)
                try:
                    self.door.start(site)
                except OSError as exc:
                    raise OperationFailed(
                        f"could not start the front door on {self.door.address}: {exc.strerror or exc}",
                        hint="set DEPLAT_FRONT_DOOR=ADDRESS to another loopback address",
                    ) from None
            current = frontdoor.read_upstream(spec)
            if current is None or current.get("site") != site:
                frontdoor.switch(spec, current.get("site") if current else None, site)
            url = f"http://{frontdoor.front_door_address(spec)}:{port}"
        else:
            from deplat.dns.switch import sync_all

            addresses = known_addresses(spec, site)
            if addresses is None:
                raise InputError(f"the addresses of {site} are unknown")
            if not sync_all(spec, self.secrets, addresses, self.emit).ok:
                raise OperationFailed(f"could not point the app's names at {site} before the drill")
            url = f"http://{spec.domain.names[0]}:{port}"
        self.say("switch", f"users reach the app at {url}", site)
        return url

    def _direct_url(self, serving: str) -> str:
        """Where the app answers from this machine: the front door, or the serving site's address."""
        port = frontdoor.front_door_ports(self.spec)[0]
        if frontdoor.uses_front_door(self.spec):
            return f"http://{frontdoor.front_door_address(self.spec)}:{port}"
        addresses = known_addresses(self.spec, serving)
        address = (addresses.ipv4 or addresses.ipv6)[0] if addresses else "127.0.0.1"
        return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"

    def _wait_for_backup(self, after: float) -> float:
        """Wait for a backup of the primary that started after ``after``; returns when it started."""
        if not datacheck.stateful_services(self.spec):
            return after

        def started() -> float | None:
            return next(
                (
                    float(e.data["started_at"])
                    for e in reversed(self.seen())
                    if e.kind == EventKind.WATCH_BACKUP and float(e.data.get("started_at", 0)) > after
                ),
                None,
            )

        wait = self.spec.backups.interval + 10 * self.policy.probe_interval + 10
        if not _wait_for(lambda: started() is not None, wait):
            raise OperationFailed(f"no backup of {self.site} within {wait:g} s: cannot measure the RPO")
        self.say("backup", "a backup of the data was taken", self.site)
        return started() or after

    def _unfence(self, site: str) -> None:
        with active_lock(self.spec):
            active = load_active(self.spec)
            if active.fenced.pop(site, None) is not None:
                save_active(self.spec, active)

    def _leave_as_found(self, report: DrillReport) -> None:
        """Move the primary back to the drilled site (unless ``stay``), and say what stays changed."""
        target = report.target
        if target is None or target == self.site:
            return
        if self.options.stay:
            report.changes.append(f"the primary stays on {target} (--stay); {self.site} is a standby again")
            return
        from deplat.failover.run import run_failover

        self.say("back", f"moving the primary back to {self.site}", self.site)
        error = ""
        try:
            back = run_failover(
                self.spec,
                self.secrets,
                to=self.site,
                from_=target,
                reason="drill: moving the primary back",
                emit=self.emit,
                drivers=self.drivers,
            )
        except Exception as exc:  # the drill's figures stand; the operator must know where traffic is
            back = None
            error = self.secrets.masker.text(str(exc))
        self._unfence(target)
        if back is not None and back.ok:
            report.notes.append(f"the primary moved back to {self.site} (journal {back.journal})")
        else:
            reason = error if back is None else f"{back.outcome}: {back.message}"
            report.problems.append(f"could not move the primary back to {self.site} ({reason})")
            report.changes.append(f"the primary is on {load_active(self.spec).primary}")

    def _forget_the_drills_failovers(self, report: DrillReport) -> None:
        """The drill's failovers must not hold a real one back (``failover.min_interval`` counts from
        the last failover): the time of the last failover goes back to what it was; the history keeps
        them, with the drill named as their reason."""
        if report.target is None:
            return
        with active_lock(self.spec):
            active = load_active(self.spec)
            if active.last_failover_at != self.last_failover_before:
                active.last_failover_at = self.last_failover_before
                save_active(self.spec, active)

    def _stop_what_was_stopped(self, report: DrillReport) -> None:
        """Stop the local sites that were not running before the drill (their data is kept)."""
        keep = report.target if self.options.stay else None
        for name, was_running in self.was_running.items():
            site = self.spec.site(name)
            driver = self.factory(site)
            if was_running or name == keep or not driver.status(site).running:
                continue
            result = driver.destroy(site, self.emit)
            if result.ok:
                report.notes.append(f"{name} was not running before the drill: stopped again (data kept)")
            else:
                report.changes.append(
                    f"{name} was not running before the drill and still runs ({result.error})"
                )

    def _judge(self, report: DrillReport) -> None:
        limits = {
            "RTO": self.options.max_rto or self.spec.drill.max_rto,
            "RPO": self.options.max_rpo or self.spec.drill.max_rpo,
        }
        values = {"RTO": report.rto_seconds, "RPO": report.rpo_seconds}
        report.budgets = [
            Budget(name, limit, values[name]) for name, limit in limits.items() if limit is not None
        ]
        for budget in report.over_budget:
            shown = "not measured" if budget.value is None else f"{budget.value:.2f} s"
            report.problems.append(f"{budget.figure} {shown} is over the budget of {budget.limit:g} s")
        if not report.data_check.ok:
            report.problems.append("the data check failed")
        report.ok = not report.problems and report.rto_seconds is not None
