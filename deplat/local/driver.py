"""``LocalDriver``: the ``SiteDriver`` of ``local`` sites (supervised processes on loopback).

    driver = LocalDriver(spec, SecretStore(spec))
    result = driver.up(spec.site("local-a"))       # starts .deplat/local/local-a/, waits for health
    driver.status(spec.site("local-a")).detail      # {"supervisor": {...}, "services": {"web": {...}}}
    driver.destroy(spec.site("local-a"))            # stops everything; the data dir stays

``up`` starts the site's supervisor if it is not running (a detached process that outlives deplat,
see ``deplat.local.supervisor``), sends it the services to run, and waits until every service with
a health check answers it. The supervisor compares what it is told with what it runs: a second
``up`` with the same spec changes nothing (``{"same": n}``, same pids); a changed service is
restarted alone (``{"update": 1}``).

``destroy`` stops the supervisor (SIGTERM; it stops its services' process groups), then removes
the site's state file, pid file, socket and logs. The services' data under
``.deplat/local/<site>/data/`` is KEPT, because it is the app's data — a later ``up`` serves it
again, and a failover may restore it elsewhere — unless ``destroy(site, purge=True)``, which removes
the whole site directory. Other files in the site dir (e.g. the drill's ``provider.json``) are
left alone unless purging.

Operations on one site are serialized by an flock on ``.deplat/local/<site>/.op.lock``. The pieces:
``launch`` (the supervisor process), ``readiness`` (health checks), ``ports`` (port conflicts).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat import cancel
from deplat.errors import DeplatError, ErrorClass, FilesystemError
from deplat.events import Emit, Event, EventKind, discard
from deplat.files import (
    exclusive_lock,
    local_filesystem_cause,
    pid_alive,
    private_dir,
    write_bytes_atomic,
    write_json_atomic,
)
from deplat.local import control, launch, sitestate
from deplat.local.launch import live_services
from deplat.local.ports import port_conflict
from deplat.local.readiness import healthy_now, wait_ready
from deplat.local.runs import site_outputs, site_runs
from deplat.local.supervisor import config_hash
from deplat.paths import ProjectPaths, local_site_dir
from deplat.providers.local import address
from deplat.site_results import Addresses, SiteResult, SiteStatus

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

OP_LOCK_TIMEOUT = 60.0


class LocalDriver:
    """Stands up, inspects and takes down ``local`` sites."""

    def __init__(
        self,
        spec: Spec,
        secrets: SecretStore,
        *,
        health_timeout: float = 15.0,
        start_timeout: float = 10.0,
        stop_timeout: float = 12.0,
    ) -> None:
        self.spec = spec
        self.secrets = secrets
        self.health_timeout = health_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout

    # -- SiteDriver ----------------------------------------------------------------------------
    def up(self, site: Site, emit: Emit = discard) -> SiteResult:
        started = time.monotonic()
        site_dir = self.site_dir(site)
        try:
            runs = site_runs(self.spec, site, self.secrets)
            self._make_site_dir(site_dir)
            for run in runs.values():
                private_dir(Path(run["data_dir"]).parent)
                private_dir(Path(run["data_dir"]))
            with exclusive_lock(site_dir / sitestate.OP_LOCK_FILE, OP_LOCK_TIMEOUT, f"site {site.name}"):
                conflict = port_conflict(self.spec, site, site_dir)
                if conflict:
                    return self._failed(site, "up", conflict, started, ErrorClass.FATAL)
                launch.ensure_supervisor(site.name, site_dir, emit, self.start_timeout, self.stop_timeout)
                emit(Event(EventKind.SITE_OP, "applying services", site=site.name, data={"op": "up"}))
                meta = {"outputs": site_outputs(self.spec, site), "spec_file": str(self.spec.source or "")}
                reply = control.call(
                    sitestate.socket_path(site_dir),
                    {"op": "apply", "services": runs, "meta": meta},
                    timeout=60.0,
                )
        except DeplatError as exc:
            reason = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            return self._failed(site, "up", reason, started, _os_error_class(exc, ErrorClass.FATAL))
        except (OSError, TimeoutError, control.ControlError) as exc:
            return self._failed(site, "up", str(exc), started, _os_error_class(exc))
        if not reply.get("ok"):
            return self._failed(
                site, "up", f"supervisor refused: {reply.get('error')}", started, ErrorClass.FATAL
            )
        changes = {k: v for k, v in reply.get("changes", {}).items() if v}
        emit(Event(EventKind.SITE_OP, "waiting for health checks", site=site.name, data={"changes": changes}))
        applied = reply.get("services", {})
        error = wait_ready(self.spec, site, site_dir, applied, self.health_timeout, self.secrets.masker.text)
        outputs = site_outputs(self.spec, site)
        if error:
            kind = ErrorClass.CANCELED if cancel.requested() else ErrorClass.FATAL
            return self._failed(site, "up", error, started, kind, changes=changes, outputs=outputs)
        emit(
            Event(
                EventKind.SITE_OP,
                f"up at {outputs.get('url', '')}",
                site=site.name,
                data={"changes": changes},
            )
        )
        return SiteResult(
            site.name, "up", True, changes=changes, outputs=outputs, seconds=time.monotonic() - started
        )

    def destroy(self, site: Site, emit: Emit = discard, purge: bool = False) -> SiteResult:
        started = time.monotonic()
        site_dir = self.site_dir(site)
        if not site_dir.exists():
            return SiteResult(site.name, "destroy", True, seconds=time.monotonic() - started)
        try:
            with exclusive_lock(site_dir / sitestate.OP_LOCK_FILE, OP_LOCK_TIMEOUT, f"site {site.name}"):
                state = sitestate.read_state(site_dir)
                emit(Event(EventKind.SITE_OP, "stopping supervisor", site=site.name, data={"op": "destroy"}))
                launch.stop_supervisor(site_dir, self.stop_timeout)
                if state:
                    sitestate.stop_leftovers(state)
                count = len(state.get("services", {})) if state else 0
                launch.remove_site_files(site_dir)
        except (OSError, TimeoutError) as exc:
            return self._failed(site, "destroy", str(exc), started, _os_error_class(exc))
        if purge:
            shutil.rmtree(site_dir, ignore_errors=True)
        changes = {"delete": count} if count else {}
        emit(
            Event(EventKind.SITE_OP, "destroyed", site=site.name, data={"changes": changes, "purged": purge})
        )
        data = ["data folder"]  # deplat.stacks.site.LOCAL_DATA
        return SiteResult(
            site.name,
            "destroy",
            True,
            changes=changes,
            seconds=time.monotonic() - started,
            kept=[] if purge else data,
            deleted=data if purge else [],
        )

    def refresh(self, site: Site, emit: Emit = discard) -> SiteResult:
        """Reconcile the state file with the processes: a dead supervisor's services are marked stopped."""
        started = time.monotonic()
        site_dir = self.site_dir(site)
        state = sitestate.read_state(site_dir)
        if state is None:
            return SiteResult(site.name, "refresh", True, seconds=time.monotonic() - started)
        live = live_services(site_dir)
        if live is not None:
            same = sum(1 for s in live.values() if s.get("state") == "running")
            changes = {"same": same, "update": len(live) - same}
        else:
            try:
                with exclusive_lock(site_dir / sitestate.OP_LOCK_FILE, OP_LOCK_TIMEOUT, site.name):
                    sitestate.stop_leftovers(state)
                    services = state.get("services", {})
                    stale = [s for s in services.values() if s.get("state") != "stopped" or s.get("pid")]
                    for svc in services.values():
                        svc.update(state="stopped", pid=None, pgid=None, identity=None)
                    state["updated_at"] = time.time()
                    write_json_atomic(sitestate.state_path(site_dir), state)
            except (OSError, TimeoutError) as exc:
                return self._failed(site, "refresh", str(exc), started, _os_error_class(exc))
            changes = {"same": len(services) - len(stale), "update": len(stale)}
        changes = {k: v for k, v in changes.items() if v}
        emit(Event(EventKind.SITE_OP, "refreshed", site=site.name, data={"changes": changes}))
        outputs = state.get("meta", {}).get("outputs") or site_outputs(self.spec, site)
        return SiteResult(
            site.name, "refresh", True, changes=changes, outputs=outputs, seconds=time.monotonic() - started
        )

    def restart(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Restart ``services`` of a running site (e.g. after their data was restored): the
        supervisor stops and starts them (not counted as crashes). Returns the services that came
        back within ``timeout`` s: a new live process whose health check, if any, passes."""
        site_dir = self.site_dir(site)
        if sitestate.supervisor_pid(site_dir) is None:
            return []
        before = (sitestate.read_state(site_dir) or {}).get("services", {})
        old = {name: (before.get(name) or {}).get("pid") for name in services}
        deadline = time.monotonic() + timeout
        try:
            reply = control.call(
                sitestate.socket_path(site_dir), {"op": "restart", "services": services}, timeout=timeout
            )
        except control.ControlError:
            return []
        if not reply.get("ok"):
            return []
        back: list[str] = []
        while time.monotonic() < deadline:
            now = (sitestate.read_state(site_dir) or {}).get("services", {})
            back = [
                name
                for name in services
                if (svc := now.get(name) or {}).get("pid") not in (None, old[name])
                and pid_alive(svc["pid"], svc.get("identity"))
                and healthy_now(self.spec, site, name) is not False
            ]
            if len(back) == len(services):
                break
            time.sleep(0.05)
        return back

    def stop(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Stop ``services`` and keep them stopped (no crash restart): their processes have exited
        when this returns, so their data folders hold everything they acknowledged. Returns the
        services now stopped; a site whose supervisor is gone has nothing running."""
        site_dir = self.site_dir(site)
        if sitestate.supervisor_pid(site_dir) is None:
            return list(services)
        try:
            reply = control.call(
                sitestate.socket_path(site_dir), {"op": "stop", "services": services}, timeout=timeout
            )
        except control.ControlError:
            return []
        if not reply.get("ok"):
            return []
        described = reply.get("services") or {}
        return [n for n in services if not (described.get(n) or {}).get("pid")]

    def archive_state(self, site: Site, dest: Path) -> dict[str, Any]:
        """The site's own state files (supervisor state, provider stand-in) into ``dest``,
        owner-only. Secret values are never in them: the supervisor keeps only hashes."""
        source = self.site_dir(site)
        copied: list[str] = []
        if source.is_dir():
            private_dir(dest)
            for path in sorted(source.glob("*.json")):
                write_bytes_atomic(dest / path.name, path.read_bytes())
                copied.append(path.name)
        return {"kind": "local", "path": str(dest), "files": copied}

    def preview(self, site: Site, emit: Emit = discard) -> SiteResult:
        """What ``up`` would change, from the running supervisor's config hashes (nothing is started).

        A changed secret value alone is not visible here (hashes leave secret values out); ``up``
        itself compares them and restarts the service.
        """
        started = time.monotonic()
        runs = site_runs(self.spec, site, self.secrets)
        site_dir = self.site_dir(site)
        live = live_services(site_dir) if sitestate.supervisor_pid(site_dir) else None
        live = live or {}
        changes: dict[str, int] = {}
        for name, run in runs.items():
            svc = live.get(name)
            if svc is None:
                op = "create"
            elif svc.get("config_hash") != config_hash(run) or svc.get("state") in ("failed", "stopped"):
                op = "update"
            else:
                op = "same"
            changes[op] = changes.get(op, 0) + 1
        if removed := len(set(live) - set(runs)):
            changes["delete"] = removed
        return SiteResult(
            site.name,
            "preview",
            True,
            changes=changes,
            outputs=site_outputs(self.spec, site),
            seconds=time.monotonic() - started,
        )

    def status(self, site: Site) -> SiteStatus:
        site_dir = self.site_dir(site)
        role = self._role(site)
        state = sitestate.read_state(site_dir)
        if state is None:
            return SiteStatus(site.name, site.provider.value, role, exists=False, running=False)
        sup_pid = sitestate.supervisor_pid(site_dir)
        live = live_services(site_dir) if sup_pid else None
        services: dict[str, Any] = {}
        for name, svc in (live if live is not None else state.get("services", {})).items():
            alive = svc.get("state") == "running" and sitestate.process_alive(
                svc.get("pid"), svc.get("identity")
            )
            services[name] = {
                "pid": svc.get("pid") if alive else None,
                "state": svc.get("state") if live is not None else ("running" if alive else "stopped"),
                "restarts": svc.get("restarts", 0),
                "started_at": svc.get("started_at"),
                "last_exit": svc.get("last_exit"),
                "config_hash": svc.get("config_hash"),
                "alive": alive,
                "healthy": healthy_now(self.spec, site, name) if alive else False,
                "log": svc.get("log"),
                "logging": svc.get("logging"),  # why its logging stopped (a full disk), else None
            }
        running = (
            live is not None
            and bool(services)
            and all(s["alive"] and s["healthy"] is not False for s in services.values())
        )
        return SiteStatus(
            site.name,
            site.provider.value,
            role,
            exists=True,
            running=running,
            last_update=state.get("updated_at"),
            outputs=state.get("meta", {}).get("outputs") or site_outputs(self.spec, site),
            detail={
                "supervisor": {
                    "pid": sup_pid if sup_pid and sup_pid > 0 else None,
                    "alive": live is not None,
                },
                "services": services,
                "site_dir": str(site_dir),
            },
        )

    def addresses(self, site: Site) -> Addresses:
        host = address(site, self.spec)
        return Addresses.of(host)

    # -- helpers -------------------------------------------------------------------------------
    def _make_site_dir(self, site_dir: Path) -> None:
        """The site dir and each folder above it up to ``.deplat``, owner-only (Path.mkdir gives
        the parents it creates the umask's mode)."""
        home = ProjectPaths.of(self.spec).home
        chain = [site_dir, *(p for p in site_dir.parents if p.is_relative_to(home))]
        for folder in reversed(chain):
            private_dir(folder)

    def site_dir(self, site: Site) -> Path:
        return local_site_dir(self.spec, site.name).resolve()

    def _role(self, site: Site) -> str:
        try:
            from deplat.state import load_active

            return load_active(self.spec).role_of(self.spec, site.name)
        except Exception:  # an unreadable active set must not break status
            return site.role.value

    def _failed(
        self,
        site: Site,
        operation: str,
        reason: str,
        started: float,
        error_class: ErrorClass,
        changes: dict[str, int] | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> SiteResult:
        return SiteResult(
            site.name,
            operation,
            False,
            changes=changes or {},
            outputs=outputs or {},
            error=self.secrets.masker.text(reason),
            error_class=error_class,
            seconds=time.monotonic() - started,
        )


def _os_error_class(exc: BaseException, otherwise: ErrorClass = ErrorClass.TRANSIENT) -> ErrorClass:
    """A full or read-only disk is the local file system's problem, not a reason to retry."""
    if isinstance(exc, FilesystemError) or local_filesystem_cause(exc) is not None:
        return ErrorClass.FILESYSTEM
    return otherwise
