"""The supervisor of one local site: a long-running process that runs the site's services.

    python -m deplat.local.supervisor --site-dir .deplat/local/SITE --site SITE [--detach]

``deplat up`` starts it detached (its own session, reparented away from ``deplat``), so it outlives
the command; ``deplat destroy`` stops it with SIGTERM. It is told what to run over its control
socket (``deplat.local.control``): the driver sends each service's argv, cwd and environment, and the
supervisor starts what is new, restarts what changed, stops what was removed and leaves the rest
alone. Comparison includes secret values, but only in memory: the state file's ``config_hash``
covers the rest.

Each service runs in its own process group with its output piped through the supervisor, which
masks secret values and appends it to ``logs/<service>.log`` (rotated at 10 MiB, one old file kept).
A service that exits is restarted after a backoff (0.1 s, doubling, at most 5 s); more than 10 exits
within 60 s and it is left ``failed`` until the next ``deplat up``. On Linux each service also gets
SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so a ``kill -9`` of the supervisor leaves nothing
listening; the driver cleans up recorded processes anyway.

Single-threaded (a selector over the socket and the services' pipes, ticking every 0.1 s), standard
library only, so it starts in a few tens of milliseconds. Its parts: ``deplat.local.service`` (one
service and what defines it), ``deplat.local.logsink`` (its log file), ``deplat.local.control``
(the socket), ``deplat.local.sitestate`` (the pid-file lock and the state files).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from deplat.errors import FilesystemError
from deplat.files import write_json_atomic
from deplat.local import control, sitestate
from deplat.local.logsink import LogSink
from deplat.local.service import Service, comparison_key, config_hash, die_with_parent, exit_text
from deplat.secrets import Masker

__all__ = ["LogSink", "Service", "Supervisor", "comparison_key", "config_hash", "main"]

TICK = 0.1
RESTART_WINDOW = 60.0
MAX_CRASHES = 10
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
STOP_TIMEOUT = 5.0
WAKEUP = "wakeup"
ORPHAN_CHECK = 2.0  # seconds between checks that the site dir still exists


class Supervisor:
    def __init__(self, site_dir: Path, site: str) -> None:
        self.site_dir = site_dir
        self.site = site
        self.services: dict[str, Service] = {}
        self.meta: dict[str, Any] = {}
        self.masker = Masker()
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.orphaned = False
        self.started_at = time.time()
        self.pid_file_inode: int | None = None
        self.state_error: str | None = None  # why state.json could not be written last time

    # -- state ---------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {name: svc.describe(self.masker) for name, svc in self.services.items()}

    def write_state(self) -> None:
        if self.orphaned:
            return  # the site dir is gone: do not create it again
        state = {
            "version": 1,
            "site": self.site,
            "supervisor": {
                "pid": os.getpid(),
                "identity": sitestate.process_identity(os.getpid()),
                "started_at": self.started_at,
                "socket": str(sitestate.socket_path(self.site_dir)),
                "stopped": self.stopping,
            },
            "updated_at": time.time(),
            "meta": self.meta,
            "services": self.describe(),
        }
        try:
            write_json_atomic(sitestate.state_path(self.site_dir), self.masker.data(state))
        except (OSError, FilesystemError) as exc:  # a full disk: the services run on, state catches up later
            self.state_error = str(exc)
        else:
            self.state_error = None

    # -- processes -----------------------------------------------------------------------------
    def start(self, svc: Service) -> None:
        run = svc.run
        env = {**run.get("base_env", {}), **run["env"]}
        svc.log.note(f"starting {' '.join(self.masker.data(run['argv']))} (cwd {run['cwd']})")
        try:
            proc = subprocess.Popen(
                run["argv"],
                cwd=run["cwd"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its children
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            svc.log.note(f"cannot start: {exc.strerror or exc}")
            self.crashed(svc, 127)
            return
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self.selector.register(proc.stdout, selectors.EVENT_READ, svc.log)
        svc.proc = proc
        svc.identity = sitestate.process_identity(proc.pid)
        svc.started_at = time.time()
        svc.state = "running"
        svc.log.note(f"started pid {proc.pid}")

    def crashed(self, svc: Service, code: int) -> None:
        now = time.monotonic()
        svc.last_exit = code
        svc.crashes = [t for t in svc.crashes if now - t < RESTART_WINDOW] + [now]
        if len(svc.crashes) > MAX_CRASHES:
            svc.state = "failed"
            svc.log.note(
                f"{len(svc.crashes)} exits in {RESTART_WINDOW:g} s: not restarting until `deplat up`"
            )
            return
        delay = min(FIRST_BACKOFF * 2 ** (len(svc.crashes) - 1), MAX_BACKOFF)
        svc.state = "backoff"
        svc.next_start = now + delay
        svc.log.note(f"restarting in {delay:g} s")

    def reap_and_restart(self) -> None:
        changed = False
        now = time.monotonic()
        for svc in self.services.values():
            if svc.proc is not None and svc.proc.poll() is not None:
                code = svc.proc.returncode
                sitestate.kill_group(svc.proc.pid, signal.SIGKILL)  # stragglers holding its port
                svc.log.note(f"pid {svc.proc.pid} {exit_text(code)}")
                svc.proc = None
                svc.identity = None
                self.crashed(svc, code)
                changed = True
            elif svc.state == "backoff" and now >= svc.next_start:
                svc.restarts += 1
                self.start(svc)
                changed = True
        if changed:
            self.write_state()

    def stop(self, services: list[Service]) -> None:
        """SIGTERM each service's process group, SIGKILL what is left after STOP_TIMEOUT."""
        running = [svc for svc in services if svc.proc is not None]
        for svc in running:
            assert svc.proc is not None
            svc.log.note(f"stopping pid {svc.proc.pid}")
            sitestate.kill_group(svc.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(s.proc and s.proc.poll() is None for s in running):
            self.pump(0.02)
        for svc in running:
            assert svc.proc is not None
            sitestate.kill_group(svc.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                svc.proc.wait(timeout=2)
            svc.log.note(f"pid {svc.proc.pid} stopped")
            svc.proc = None
            svc.identity = None
        for svc in services:
            svc.state = "stopped"

    # -- I/O -----------------------------------------------------------------------------------
    def pump(self, timeout: float, listener: socket.socket | None = None) -> None:
        """Move the services' output to their logs; answer the control socket when given."""
        for key, _ in self.selector.select(timeout):
            if key.data is WAKEUP:
                with contextlib.suppress(OSError):
                    key.fileobj.recv(4096)  # type: ignore[union-attr]
                continue
            if key.data is None:
                if listener is not None:
                    self.answer(listener)
                else:  # a client waits while we stop services: answer it afterwards, don't spin
                    time.sleep(timeout)
                continue
            sink: LogSink = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                was = sink.stopped
                sink.feed(data)
                if sink.stopped != was:
                    self.write_state()  # say that logging stopped (or came back)
            else:
                self.selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                sink.flush_partial()

    def answer(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5.0)
            try:
                request = control.receive(conn)
                reply = self.handle(request)
            except (control.ControlError, OSError) as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:  # a bad request never takes the site down
                reply = {"ok": False, "error": self.masker.text(f"{type(exc).__name__}: {exc}")}
            with contextlib.suppress(OSError):
                control.send(conn, reply)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "status":
            return {
                "ok": True,
                "pid": os.getpid(),
                "services": self.describe(),
                "state_error": self.state_error,
            }
        if op == "apply":
            return self.apply(request.get("services") or {}, request.get("meta") or {})
        if op == "restart":
            return self.restart(request.get("services"))
        if op == "stop":
            return self.stop_on_request(request.get("services"))
        return {"ok": False, "error": f"unknown op {op!r}"}

    def apply(self, wanted: dict[str, dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
        changes: Counter[str] = Counter()
        for run in wanted.values():
            for key in run.get("secret_keys", []):
                self.masker.add(str(run["env"].get(key, "")))
        removed = [svc for name, svc in self.services.items() if name not in wanted]
        self.stop(removed)
        for gone in removed:
            gone.log.close()
            del self.services[gone.name]
            changes["delete"] += 1
        for name, run in wanted.items():
            current = self.services.get(name)
            if current is None:
                svc = Service(name, run, LogSink(Path(run["log"]), self.masker))
                self.services[name] = svc
                self.start(svc)
                changes["create"] += 1
                continue
            if current.key != comparison_key(run) or current.state in ("failed", "stopped"):
                self.stop([current])
                current.run = run
                current.crashes = []
                self.start(current)
                changes["update"] += 1
            else:
                changes["same"] += 1
        self.meta = meta
        self.write_state()
        return {"ok": True, "pid": os.getpid(), "changes": dict(changes), "services": self.describe()}

    def restart(self, names: list[str] | None) -> dict[str, Any]:
        """Stop and start services on request (not a crash: the restart budget is untouched)."""
        unknown = [n for n in names or [] if n not in self.services]
        if unknown:
            return {"ok": False, "error": f"no such service: {', '.join(unknown)}"}
        chosen = [self.services[n] for n in (names or list(self.services))]
        self.stop(chosen)
        for svc in chosen:
            svc.crashes = []
            self.start(svc)
        self.write_state()
        return {
            "ok": True,
            "pid": os.getpid(),
            "changes": {"update": len(chosen)},
            "services": self.describe(),
        }

    def stop_on_request(self, names: list[str] | None) -> dict[str, Any]:
        """Stop services and keep them stopped (a planned failover stops the old primary's writes
        before its final backup); the next `apply` or `restart` starts them again."""
        unknown = [n for n in names or [] if n not in self.services]
        if unknown:
            return {"ok": False, "error": f"no such service: {', '.join(unknown)}"}
        chosen = [self.services[n] for n in (names or list(self.services))]
        self.stop(chosen)
        self.write_state()
        return {"ok": True, "pid": os.getpid(), "services": self.describe()}

    # -- life ----------------------------------------------------------------------------------
    def run(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)
        # Signals (SIGTERM, and SIGCHLD when a service exits) wake the selector at once, so a stop
        # or a crash is handled in milliseconds rather than at the next tick.
        wake_read, wake_write = socket.socketpair()
        for end in (wake_read, wake_write):
            end.setblocking(False)
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(wake_read, selectors.EVENT_READ, WAKEUP)
        self.write_state()
        next_look = time.monotonic() + ORPHAN_CHECK
        while not self.stopping:
            self.pump(TICK, listener)
            self.reap_and_restart()
            if time.monotonic() > next_look:
                next_look = time.monotonic() + ORPHAN_CHECK
                self.check_orphaned()
        self.selector.unregister(listener)
        self.stop(list(self.services.values()))
        signal.set_wakeup_fd(-1)
        self.selector.unregister(wake_read)
        wake_read.close()
        wake_write.close()
        self.write_state()
        for svc in self.services.values():
            svc.log.close()

    def check_orphaned(self) -> None:
        """Stop when our pid file is gone or replaced (``rm -rf .deplat``, a test's temp dir removed):
        nobody could reach or stop this supervisor any more, so it must not run on forever."""
        try:
            gone = os.stat(self.site_dir / sitestate.PID_FILE).st_ino != self.pid_file_inode
        except FileNotFoundError:
            gone = True
        if gone and self.pid_file_inode is not None:
            _say(f"supervisor {os.getpid()}: site dir removed; stopping")
            self.orphaned = self.stopping = True

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def _say(text: str) -> None:
    """A line on the supervisor's own log (stdout); a full disk loses it rather than the supervisor."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Supervise one local site's services.")
    parser.add_argument("--site-dir", required=True, type=Path)
    parser.add_argument("--site", required=True)
    parser.add_argument("--detach", action="store_true", help="fork and let the parent return at once")
    args = parser.parse_args(argv)
    os.umask(0o077)  # everything under .deplat is owner-only: logs, state, what the services write
    if args.detach and os.fork() > 0:
        os._exit(0)  # the caller reaps this parent now; the supervisor is nobody's child but init's
    site_dir: Path = args.site_dir.resolve()
    site_dir.mkdir(parents=True, exist_ok=True)
    lock = sitestate.lock_pid_file(site_dir)
    if lock is None:
        print(f"supervisor: another supervisor runs site {args.site}", file=sys.stderr, flush=True)
        return 3
    path = sitestate.socket_path(site_dir)
    listener = control.listen(path)
    supervisor = Supervisor(site_dir, args.site)
    supervisor.pid_file_inode = os.fstat(lock).st_ino
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _say(f"supervisor {os.getpid()}: site {args.site} up, socket {path}")
    try:
        supervisor.run(listener)
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        _say(f"supervisor {os.getpid()}: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
