"""One service as the supervisor runs it (``deplat.local.supervisor``): what defines it (its hash,
written to disk with secret values left out; its comparison key, in memory only), its process and
log, its restarts; and what its child process does between fork and exec."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

from deplat.local.logsink import LogSink
from deplat.secrets import Masker

PR_SET_PDEATHSIG = 1


def config_hash(run: dict[str, Any]) -> str:
    """A hash of what defines the service, with secret values left out (it is written to disk)."""
    secret_keys = set(run.get("secret_keys", []))
    env = {k: ("<secret>" if k in secret_keys else v) for k, v in run.get("env", {}).items()}
    shown = {"argv": run["argv"], "cwd": run["cwd"], "env": env, "secret_keys": sorted(secret_keys)}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]


def comparison_key(run: dict[str, Any]) -> str:
    """What must be equal for a running service to stay untouched: secret values included (memory only).

    ``base_env`` (PATH, HOME, ... inherited from whoever ran ``deplat up``) is left out, so running
    ``up`` from another shell does not restart anything.
    """
    wanted = {k: run.get(k) for k in ("argv", "cwd", "env", "secret_keys")}
    return json.dumps(wanted, sort_keys=True)


@dataclass
class Service:
    name: str
    run: dict[str, Any]
    log: LogSink
    proc: subprocess.Popen[bytes] | None = None
    identity: str | None = None
    started_at: float | None = None
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)
    state: str = "starting"  # running | backoff | failed | stopped
    next_start: float = 0.0
    last_exit: int | None = None

    @property
    def key(self) -> str:
        return comparison_key(self.run)

    def describe(self, masker: Masker) -> dict[str, Any]:
        pid = self.proc.pid if self.proc else None
        return {
            "pid": pid,
            "pgid": pid,
            "identity": self.identity,
            "state": self.state,
            "config_hash": config_hash(self.run),
            "started_at": self.started_at,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "argv": masker.data(self.run["argv"]),
            "cwd": self.run["cwd"],
            "log": str(self.log.path),
            "logging": self.log.stopped,  # why logging stopped (a full disk), None while it works
        }


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
