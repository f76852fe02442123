"""The drill: rehearse losing the primary on local sites, and measure detection, RTO and RPO.

Sequence (``run_drill``):

1. stand up every site that is not cold (``up`` is idempotent), and the traffic switch: the DNS
   records are synced to the primary, or (a spec without ``dns:``) the local front door is started
   in this process (``deplat.failover.frontdoor``: ``http://127.A.B.10:<port>``);
2. start a watcher in this process (the spec's policy, ``min_interval`` ignored: a drill is an
   explicit request);
3. write data: the data check (below) writes its marks, then waits for a backup that started after
   the last write, and fingerprints the primary's data dirs;
4. suspension: the fault (``suspended``, ``refused``, ``blackhole`` or ``slow``) is applied to the
   primary (``deplat.failover.faults``), and a client starts asking the app's public path (the front
   door, or the names through the DNS server) for its health page every 50 ms;
5. the watcher detects, decides and fails over; the drill waits for the failover's end and the
   client's first healthy answer from another site;
6. data check, timeline, report (``deplat.failover.report``), and cleanup: the fault is cleared and
   the drilled site comes back as a standby (unfenced: its provider was never really gone). The
   primary stays on the new site.

The data check, kept generic: every stateful service's data dir on the primary is fingerprinted
(sha256 of every file) at the suspension, and after the failover each file must be on the new
primary with the same content (or, for an append-only file, the same content as a prefix). For the
guestbook (a service whose public port answers ``GET /entries`` with a JSON list) the drill also
writes entries through the app's own API before the suspension and reads them back through the
front door / DNS names after: what a user wrote is what a user sees.

Timeline and figures: detection = the watcher's verdict (down/suspended) - suspension; RTO = first
healthy answer from the new site - suspension; RPO = suspension - ``taken_at`` of the restored
backup (its age when the site was lost).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, discard
from deplat.failover import frontdoor
from deplat.failover.run import DriverFactory, active_lock, dns_resolver, known_addresses
from deplat.paths import local_site_dir
from deplat.sites import driver_for
from deplat.spec.model import Provider, Role, Spec
from deplat.state import load_active, save_active

if TYPE_CHECKING:
    from deplat.secrets import SecretStore

ENTRIES = 5  # guestbook entries the drill writes
POLL = 0.05  # seconds between the client's requests after the suspension
FINISHED = ("done", "already", "unverified")  # failover outcomes after which traffic has moved


@dataclass
class Mark:
    name: str
    at: float | None
    offset: float | None  # seconds after the suspension
    detail: str = ""


@dataclass
class DrillReport:
    ok: bool
    site: str  # the drilled (suspended) site
    target: str | None  # where the watcher failed over to
    mode: str
    switch: str  # dns | front_door
    url: str  # where users reach the app
    timeline: list[Mark] = field(default_factory=list)
    detection_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    data_check: dict[str, Any] = field(default_factory=dict)
    failover: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    notes: list[str] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- data check -----------------------------------------------------------------------------------


def fingerprint(directory: Path) -> dict[str, str]:
    """sha256 of every regular file under ``directory`` (relative paths)."""
    out: dict[str, str] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(directory).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def compare_files(before: dict[str, dict[str, str]], spec: Spec, site: str, old_site: str) -> dict[str, Any]:
    """Every file fingerprinted on the old site is on ``site`` with the same content (or as a prefix)."""
    missing: list[str] = []
    checked = 0
    for service, files in before.items():
        new_dir = local_site_dir(spec, site) / "data" / service
        old_dir = local_site_dir(spec, old_site) / "data" / service
        for rel, digest in files.items():
            checked += 1
            path = new_dir / rel
            if not path.is_file():
                missing.append(f"{service}/{rel}")
                continue
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == digest:
                continue
            old = old_dir / rel  # read only to compare a prefix: the drill's own disk, not a provider
            prefix = old.read_bytes() if old.is_file() else b""
            if not (prefix and data.startswith(prefix) and hashlib.sha256(prefix).hexdigest() == digest):
                missing.append(f"{service}/{rel} (different content)")
    return {"files_checked": checked, "files_missing": missing, "ok": not missing}


class GuestbookCheck:
    """Entries written through the app's HTTP API, read back through the users' path."""

    def __init__(self, service: str, port: int) -> None:
        self.service = service
        self.port = port
        self.token = uuid.uuid4().hex[:8]
        self.written: list[str] = []

    @classmethod
    def detect(cls, spec: Spec, address: str, timeout: float) -> GuestbookCheck | None:
        import httpx

        for name, svc in spec.services.items():
            if not svc.stateful:
                continue
            for port in svc.public_ports:
                try:
                    answer = httpx.get(f"http://{address}:{port}/entries", timeout=timeout, trust_env=False)
                    if answer.status_code == 200 and isinstance(answer.json(), list):
                        return cls(name, port)
                except (httpx.HTTPError, ValueError):
                    continue
        return None

    def write(self, address: str, timeout: float) -> None:
        import httpx

        for i in range(ENTRIES):
            message = f"drill {self.token} #{i + 1}"
            answer = httpx.post(
                f"http://{address}:{self.port}/entries",
                json={"name": "deplat-drill", "message": message},
                timeout=timeout,
                trust_env=False,
            )
            if answer.status_code >= 300:
                raise OperationFailed(f"the drill could not write to the app: HTTP {answer.status_code}")
            self.written.append(message)

    def read(self, url: str, host: str, timeout: float) -> dict[str, Any]:
        import httpx

        try:
            answer = httpx.get(f"{url}/entries", headers={"Host": host}, timeout=timeout, trust_env=False)
            found = {str(e.get("message")) for e in answer.json()}
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return {"ok": False, "written": len(self.written), "found": 0, "error": str(exc)}
        present = [m for m in self.written if m in found]
        return {
            "ok": len(present) == len(self.written),
            "written": len(self.written),
            "found": len(present),
            "missing": [m for m in self.written if m not in found],
            "via": url,
        }


# --- the users' path --------------------------------------------------------------------------------


class Client:
    """Asks the app's health page the way users reach it, every ``POLL`` s, and notes the first
    healthy answer from a site other than the drilled one."""

    def __init__(self, spec: Spec, old_site: str, timeout: float) -> None:
        self.spec = spec
        self.old = old_site
        self.timeout = min(timeout, 1.0)
        self.first_healthy_at: float | None = None
        self.first_healthy_site: str | None = None
        self.requests = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="drill-client", daemon=True)
        self.health = next((s.health for s in spec.services.values() if s.health is not None), None)
        old_addresses = known_addresses(spec, old_site)
        self.old_addresses = set() if old_addresses is None else {*old_addresses.ipv4, *old_addresses.ipv6}
        self.sites_by_address = {}
        for site in spec.sites:
            found = known_addresses(spec, site.name)
            for address in [] if found is None else [*found.ipv4, *found.ipv6]:
                self.sites_by_address[address] = site.name

    def start(self) -> Client:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.first_healthy_at is None:
            time.sleep(POLL)
        return self.first_healthy_at is not None

    def _loop(self) -> None:
        import httpx

        if self.health is None:
            return
        with httpx.Client(trust_env=False, timeout=self.timeout) as client:
            while not self.stopped.is_set() and self.first_healthy_at is None:
                self.requests += 1
                with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
                    site = self._ask(client)
                    if site is not None and site != self.old:
                        self.first_healthy_at = time.time()
                        self.first_healthy_site = site
                        return
                self.stopped.wait(POLL)

    def _ask(self, client: Any) -> str | None:
        """The site that answered healthy through the users' path, or None."""
        assert self.health is not None
        path, port, expect = self.health.path, self.health.port, self.health.expect
        if frontdoor.uses_front_door(self.spec):
            url = f"http://{frontdoor.front_door_address(self.spec)}:{port}{path}"
            answer = client.get(url, headers={"Connection": "close"})
            return answer.headers.get(frontdoor.SITE_HEADER) if answer.status_code == expect else None
        resolver = dns_resolver(self.spec)
        if resolver is None:
            return None
        from deplat.failover.probe import resolve_names, run_sync

        name = self.spec.domain.names[0]
        names, _ = run_sync(resolve_names([name], resolver, timeout=self.timeout))
        for address in names.get(name, []):
            host = f"[{address}]" if ":" in address else address
            answer = client.get(f"http://{host}:{port}{path}", headers={"Host": name})
            if answer.status_code == expect:
                return self.sites_by_address.get(address, address)
        return None


# --- the drill --------------------------------------------------------------------------------------


def _drill_spec(spec: Spec) -> Spec:
    """The spec the drill's watcher uses: the same policy, without the minimum interval."""
    return spec.model_copy(update={"failover": spec.failover.model_copy(update={"min_interval": 0.0})})


def _unfence(spec: Spec, site: str) -> None:
    with active_lock(spec):
        active = load_active(spec)
        if active.fenced.pop(site, None) is not None:
            save_active(spec, active)


def _sync_traffic(spec: Spec, secrets: SecretStore, primary: str, emit: Emit) -> str:
    """Make the traffic switch point at the primary before the drill; returns the users' URL."""
    port = frontdoor.front_door_ports(spec)[0]
    if frontdoor.uses_front_door(spec):
        current = frontdoor.read_upstream(spec)
        if current is None or current.get("site") != primary:
            frontdoor.switch(spec, current.get("site") if current else None, primary)
        return f"http://{frontdoor.front_door_address(spec)}:{port}"
    from deplat.dns.switch import sync_all

    addresses = known_addresses(spec, primary)
    if addresses is None:
        raise InputError(f"the addresses of {primary} are unknown")
    report = sync_all(spec, secrets, addresses, emit)
    if not report.ok:
        raise OperationFailed(f"could not point the app's names at {primary} before the drill")
    return f"http://{spec.domain.names[0]}:{port}"


def _wait_for(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def run_drill(
    spec: Spec,
    secrets: SecretStore,
    *,
    site: str | None = None,
    mode: str = "suspended",
    emit: Emit = discard,
    report: Path | None = None,
    write_report: bool = True,
    drivers: DriverFactory | None = None,
    timeout: float | None = None,
) -> DrillReport:
    """Rehearse losing ``site`` (default: the current primary) in ``mode``; see the module docstring.
    ``timeout``: how long to wait for detection and failover (default: generous for the policy)."""
    from deplat.failover.faults import MODES, FaultInjector
    from deplat.failover.watch import Watcher

    if mode not in MODES:
        raise InputError(f"unknown fault mode '{mode}'; known: {', '.join(MODES)}")
    active = load_active(spec)
    site = site or active.primary
    names = [s.name for s in spec.sites]
    if site not in names:
        raise InputError(f"--site {site}: no such site", hint=f"sites: {', '.join(names)}")
    if site != active.primary:
        raise InputError(
            f"a drill suspends the primary; {site} is not the primary ({active.primary} is)",
            hint=f"run `deplat drill` without --site, or with --site {active.primary}",
        )
    if spec.site(site).provider is not Provider.local:
        raise InputError(f"site {site} is a {spec.site(site).provider.value} site: drills run on local sites")
    standbys = [s for s in spec.sites if s.name != site and s.name not in active.fenced]
    if not standbys:
        raise InputError("no standby site to fail over to (every other site is fenced)")
    factory: DriverFactory = drivers or (lambda s: driver_for(spec, s, secrets))
    policy = spec.failover
    timeout = timeout or (policy.probe_interval + policy.timeout) * (policy.failures_to_down + 2) + 60
    started = time.time()
    say = _sayer(emit)

    # 1. sites and the traffic switch
    for s in spec.sites:
        if s.name in active.fenced or (s.role is Role.cold and s.name != active.primary):
            continue
        say("up", f"standing up {s.name}", s.name)
        result = factory(s).up(s, emit)
        if not result.ok:
            raise OperationFailed(f"could not stand up {s.name} for the drill: {result.error}")
    door = None
    if frontdoor.uses_front_door(spec) and not frontdoor.front_door_running(spec):
        door = frontdoor.FrontDoor(spec, timeout=policy.timeout)
        try:
            door.start(site)
        except OSError as exc:
            raise OperationFailed(
                f"could not start the front door on {door.address}: {exc.strerror or exc}",
                hint="set DEPLAT_FRONT_DOOR=ADDRESS to another loopback address",
            ) from None
    url = _sync_traffic(spec, secrets, site, emit)
    say("switch", f"users reach the app at {url}", site)

    drill_spec = _drill_spec(spec)
    events: list[Event] = []
    events_lock = threading.Lock()

    def collect(event: Event) -> None:
        with events_lock:
            events.append(event)
        emit(event)

    watcher = Watcher(drill_spec, secrets, emit=collect, drivers=drivers, name="drill")
    watch_thread = threading.Thread(target=watcher.run, name="drill-watcher", daemon=True)
    injector = FaultInjector(spec, site, secrets)
    client: Client | None = None
    report_doc = DrillReport(
        ok=False,
        site=site,
        target=None,
        mode=mode,
        switch="front_door" if frontdoor.uses_front_door(spec) else "dns",
        url=url,
        policy=policy.model_dump(),
        started_at=started,
    )
    try:
        watch_thread.start()
        # 3. data: write, wait for a backup after the last write, fingerprint
        address = (known_addresses(spec, site) or _no_address(site)).ipv4[0]
        guestbook = GuestbookCheck.detect(spec, address, policy.timeout * 2)
        if guestbook is not None:
            guestbook.write(address, policy.timeout * 2)
            say("write", f"wrote {len(guestbook.written)} guestbook entries through the app", site)
        stateful = [n for n, s in spec.services.items() if s.stateful]
        last_write = time.time()
        if stateful:

            def backed_up() -> bool:
                with events_lock:
                    return any(
                        e.kind == "watch.backup" and e.data.get("started_at", 0) > last_write for e in events
                    )

            backup_wait = spec.backups.interval + 10 * policy.probe_interval + 10
            if not _wait_for(backed_up, backup_wait):
                raise OperationFailed(f"no backup of {site} within {backup_wait:g}s: cannot measure the RPO")
            say("backup", "a backup of the written data was taken", site)
        before = {n: fingerprint(local_site_dir(spec, site) / "data" / n) for n in stateful}

        # 4. suspension
        suspended_at = time.time()
        injector.apply(mode)  # type: ignore[arg-type]
        say("suspend", f"{site} is now {mode}", site)
        client = Client(spec, site, policy.timeout).start()

        # 5. detection and failover
        def failover_over() -> bool:
            with events_lock:
                return any(e.kind == "failover.end" and e.data.get("outcome") in FINISHED for e in events)

        if not _wait_for(failover_over, timeout, 0.05):
            report_doc.notes.append(f"no failover within {timeout:g}s")
        client.wait(max(5.0, 5 * policy.timeout))
        client.stop()
        watcher.stop("drill")
        watch_thread.join(timeout=60)

        # 6. results
        with events_lock:
            seen = list(events)
        _fill(report_doc, seen, suspended_at, client)
        target = report_doc.target
        if target is not None:
            checks: dict[str, Any] = {
                "method": "files" + (" + guestbook API" if guestbook else ""),
                "files": compare_files(before, spec, target, site),
            }
            if guestbook is not None:
                host = spec.domain.names[0]
                checks["guestbook"] = guestbook.read(_user_url(spec, target), host, policy.timeout * 2)
            checks["ok"] = all(v.get("ok") for k, v in checks.items() if isinstance(v, dict))
            report_doc.data_check = checks
        else:
            report_doc.data_check = {"ok": False, "note": "no failover happened"}
        report_doc.ok = bool(
            target is not None and report_doc.rto_seconds is not None and report_doc.data_check.get("ok")
        )
    finally:
        if client is not None:
            client.stop()
        watcher.stop("drill")
        watch_thread.join(timeout=60)
        with contextlib.suppress(Exception):
            injector.clear(restart=True)
        _unfence(spec, site)
        if door is not None:
            door.stop()
    report_doc.notes.append(
        f"{site} was cleared after the drill and is a standby again; the primary stays on "
        f"{report_doc.target or load_active(spec).primary}"
    )
    if door is not None:
        report_doc.notes.append("the front door ran inside the drill and stopped with it")
    report_doc.finished_at = time.time()
    if write_report:
        from deplat.failover.report import write_drill_report

        report_doc.report_path = str(write_drill_report(spec, report_doc, report))
    say("done", "drill finished" + ("" if report_doc.ok else " with problems"), report_doc.target)
    return report_doc


def _no_address(site: str) -> Any:
    raise OperationFailed(f"site {site} has no address")


def _user_url(spec: Spec, target: str) -> str:
    port = frontdoor.front_door_ports(spec)[0]
    if frontdoor.uses_front_door(spec):
        return f"http://{frontdoor.front_door_address(spec)}:{port}"
    addresses = known_addresses(spec, target)
    address = (addresses.ipv4 or addresses.ipv6)[0] if addresses else "127.0.0.1"
    return f"http://{address}:{port}"


def _sayer(emit: Emit) -> Any:
    def say(step: str, message: str, site: str | None = None) -> None:
        emit(Event("drill.step", message, site=site, data={"step": step}))

    return say


def _switch_detail(data: dict[str, Any]) -> str:
    if data.get("via") == "front_door":
        return f"front door: {data.get('outcome')}"
    providers = data.get("providers") or {}
    return "DNS: " + ", ".join(f"{name} {outcome}" for name, outcome in providers.items())


def _fill(report: DrillReport, events: list[Event], suspended_at: float, client: Client) -> None:
    def first(kind: str, pred: Any = lambda e: True) -> Event | None:
        return next((e for e in events if e.kind == kind and e.at >= suspended_at and pred(e)), None)

    detection = first(
        "watch.verdict", lambda e: e.site == report.site and e.data.get("state") in ("down", "suspended")
    )
    decision = first("watch.decision")
    switched = first(
        "failover.step", lambda e: e.data.get("step") == "switch" and e.data.get("status") == "done"
    )
    ended = first("failover.end", lambda e: e.data.get("outcome") in FINISHED)
    if ended is not None:
        report.failover = {
            k: ended.data.get(k)
            for k in ("outcome", "from_site", "to_site", "journal", "ok", "switch", "verify")
        }
        report.target = ended.data.get("to_site")
        restored = ended.data.get("restored") or []
        taken = [r.get("taken_at") for r in restored if r.get("taken_at")]
        if taken:
            report.rpo_seconds = round(suspended_at - min(taken), 3)
    marks = [
        ("suspension", suspended_at, f"{report.site} {report.mode}"),
        (
            "detection",
            detection.at if detection else None,
            detection.message if detection else "not detected",
        ),
        ("decision", decision.at if decision else None, decision.message if decision else "no decision"),
        (
            "switched" if report.switch == "front_door" else "DNS switched",
            switched.at if switched else None,
            _switch_detail(switched.data) if switched else "not switched",
        ),
        (
            "first healthy answer",
            client.first_healthy_at,
            f"from {client.first_healthy_site}" if client.first_healthy_site else "none",
        ),
    ]
    report.timeline = [
        Mark(name, at, None if at is None else round(at - suspended_at, 3), detail)
        for name, at, detail in marks
    ]
    if detection is not None:
        report.detection_seconds = round(detection.at - suspended_at, 3)
    if client.first_healthy_at is not None:
        report.rto_seconds = round(client.first_healthy_at - suspended_at, 3)
        if report.target is None:
            report.target = client.first_healthy_site
