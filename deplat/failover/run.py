"""The failover: move the primary role (traffic and data) from one site to another, step by step.

``run_failover`` checks its input (nothing is journaled before it is valid), takes the spec's
operation lock (``deplat.oplock``: a second operation fails at once naming the holder), opens a
journal and runs the typed steps of ``deplat.failover.steps`` in order. Each step is journaled
``start`` / ``done`` with its result (``deplat.failover.journal``); a step whose result is journaled
and settled is never run again: ``run_failover(..., resume=True)`` (``deplat failover --resume``)
continues the newest unfinished journal after a crash, ``kill -9`` included. Steps are idempotent by
themselves too (up, restore, CAS switch, fencing under a lock), which covers a crash between a side
effect and its ``done``.

Outcomes: ``done`` (every DNS provider, or the front door, serves the healthy target), ``partial``
(some DNS providers were left behind: exit 1, the journal stays open for ``--resume`` and the
watcher), ``unverified``, ``already``, ``conflict`` (another failover won), ``refused``, ``failed``.

``checkpoint`` (tests): called with ``"<step>:start"`` after a step's start is journaled and with
``"<step>"`` after its result is; a test harness passes one that kills the process there.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deplat import oplock
from deplat.errors import DeplatError, FilesystemError, InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.failover import data
from deplat.failover.journal import Journal, owner_record
from deplat.failover.steps import PIPELINE, STEPS, Conflict, DriverFactory, Failover, Refused
from deplat.failover.traffic import traffic_for
from deplat.sites import driver_for
from deplat.spec.model import Spec
from deplat.state import load_active

if TYPE_CHECKING:
    from deplat.secrets import SecretStore

__all__ = ["STEPS", "DriverFactory", "FailoverResult", "run_failover"]

Checkpoint = Callable[[str], None]


def no_checkpoint(point: str) -> None:
    """The default ``checkpoint``: nothing happens between steps."""


@dataclass
class FailoverResult:
    ok: bool
    outcome: str  # done | partial | unverified | already | conflict | refused | failed
    from_site: str
    to_site: str
    reason: str
    journal: str
    resumed: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    rpo_seconds: float | None = None
    planned: bool | None = None  # True: writes stopped and a final backup restored (RPO 0)
    restored: list[dict[str, Any]] = field(default_factory=list)
    switch: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    left_behind: list[str] = field(default_factory=list)  # DNS providers that still serve the old site
    started_at: float = 0.0
    finished_at: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_input(spec: Spec, secrets: SecretStore, to: str, from_: str | None) -> str:
    """Everything a failover needs that the user can fix, checked before anything is journaled:
    the sites exist, the backup store is usable, and a cloud target has the ``pulumi`` CLI and the
    state passphrase. Returns the site being left."""
    names = [s.name for s in spec.sites]
    for label, value in (("--to", to), ("--from", from_)):
        if value is not None and value not in names:
            raise InputError(f"{label} {value}: no such site", hint=f"sites: {', '.join(names)}")
    active = load_active(spec)
    old = from_ or active.primary
    if old == to:
        raise InputError(f"{to} is already the site being left", hint="choose another --to")
    data.check(spec)
    data.check_target(spec, to, active.role_of(spec, to))
    from deplat.operations import preflight  # the pulumi CLI and passphrase, for a cloud target

    preflight(spec, [spec.site(to)], secrets)
    return old


def run_failover(
    spec: Spec,
    secrets: SecretStore,
    *,
    to: str | None = None,
    from_: str | None = None,
    force: bool = False,
    resume: bool = False,
    reason: str = "operator",
    reference_time: float | None = None,
    emit: Emit = discard,
    drivers: DriverFactory | None = None,
    wait: float | None = None,
    abandon_on_failure: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> FailoverResult:
    """Fail over from ``from_`` (default: the current primary) to ``to``; or, with ``resume``,
    continue the newest unfinished failover. ``reference_time``: when the old site was lost
    (the RPO is measured from there; default: now). ``drivers`` (tests): site -> driver.
    ``wait``: how long the target may take to become healthy (default: 10 probe timeouts, >= 15 s).
    ``abandon_on_failure`` (the watcher): a failed step ends the journal instead of leaving it to
    ``--resume``.
    """
    hint = "wait for it to finish, then run this again"
    oplock.refuse_if_taken(spec, "operation", hint)  # first: another operation's state is in motion
    if not resume:
        if not to:
            names = ", ".join(s.name for s in spec.sites)
            raise InputError("which site takes over? say --to SITE", hint=f"sites: {names}")
        old = check_input(spec, secrets, to, from_)
    command = "deplat failover " + ("--resume" if resume else f"--to {to}")
    with oplock.hold(spec, "operation", command, hint=hint):
        if resume:
            journal = _resumable(spec, secrets)
        else:
            assert to is not None
            _supersede_dead(spec, secrets, to)
            now = time.time()
            begin = {
                "from": old,
                "to": to,
                "force": force,
                "reason": reason,
                "requested_at": now,
                "reference_time": reference_time or now,
                **owner_record(),
            }
            journal = Journal.create(spec, begin, secrets.masker)
        with journal.running():
            failover = Failover(
                spec=spec,
                secrets=secrets,
                journal=journal,
                emit=emit,
                drivers=drivers or (lambda site: driver_for(spec, site, secrets)),
                traffic=traffic_for(spec, secrets, timeout=spec.failover.timeout * 5, emit=emit),
                wait=wait if wait is not None else max(15.0, 10 * spec.failover.timeout),
            )
            return _run(failover, resume, abandon_on_failure, checkpoint)


def _resumable(spec: Spec, secrets: SecretStore) -> Journal:
    journal = Journal.newest_unfinished(spec, secrets.masker)
    if journal is None:
        raise InputError(
            "no unfinished failover to resume", hint="start one with `deplat failover --to SITE`"
        )
    owner = journal.live_owner()
    if owner is not None:
        raise InputError(
            f"the failover in {journal.path.name} is still running (pid {owner})",
            hint="wait for it to finish, or stop that process first",
        )
    journal.note("resumed", owner_record())
    return journal


def _run(f: Failover, resume: bool, abandon_on_failure: bool, checkpoint: Checkpoint) -> FailoverResult:
    journal, emit, masker = f.journal, f.emit, f.secrets.masker
    begin = journal.begin
    emit(Event(EventKind.FAILOVER_BEGIN, f"failover {f.old} -> {f.new}", site=f.new, data=masker.data(begin)))
    result = FailoverResult(
        ok=False,
        outcome="failed",
        from_site=f.old,
        to_site=f.new,
        reason=f.reason,
        journal=str(journal.path),
        resumed=resume,
        started_at=float(begin.get("requested_at", time.time())),
    )
    try:
        _run_steps(f, checkpoint)
    except Refused as exc:
        journal.end("refused", {"message": str(exc)})
        result.outcome, result.message = "refused", str(exc)
        _finish(f, result)
        raise OperationFailed(str(exc), hint="--force fails over anyway") from None
    except Conflict as exc:
        journal.end("conflict", {"message": str(exc)})
        result.outcome, result.message = "conflict", str(exc)
        return _finish(f, result)
    except FilesystemError as exc:  # the journal may not take another line: it stays open for --resume
        result.message = exc.message
        _finish(f, result)
        raise OperationFailed(
            f"failover stopped: {exc.message}",
            hint=f"{exc.hint or 'fix the disk'}; then `deplat failover --resume` continues",
        ) from exc
    except Exception as exc:  # the journal stays unfinished: --resume continues from the failed step
        error = exc if isinstance(exc, DeplatError) else None
        result.message = masker.text(error.message if error else f"{type(exc).__name__}: {exc}")
        if abandon_on_failure:
            with contextlib.suppress(FilesystemError):
                journal.end("failed", {"message": result.message})
        _finish(f, result)
        if error is not None:
            raise
        raise OperationFailed(
            f"failover stopped at a step: {result.message}", hint="`deplat failover --resume` continues"
        ) from exc
    switch, verify = f.results["switch"], f.results["verify"]
    result.left_behind = sorted(set(switch.get("left_behind", [])) | set(verify.get("left_behind", [])))
    verified = bool(verify.get("healthy"))
    if result.left_behind:
        result.outcome = "partial"
        result.message = (
            f"traffic moved to {f.new}, but DNS provider(s) {', '.join(result.left_behind)} still do not "
            "serve it; `deplat failover --resume` (or a running watcher) finishes the switch when they answer"
        )
    elif switch.get("outcome") == "already":
        result.outcome = "already"
    else:
        result.outcome = "done" if verified else "unverified"
    result.ok = verified and not result.left_behind
    result.rpo_seconds = f.results["restore"].get("rpo_seconds")
    result.planned = bool(f.results["final_backup"].get("planned"))
    result.restored = f.results["restore"].get("restored", [])
    result.switch, result.verify = switch, verify
    journal.end(result.outcome, {"rpo_seconds": result.rpo_seconds, "left_behind": result.left_behind})
    return _finish(f, result)


def _run_steps(f: Failover, checkpoint: Checkpoint) -> None:
    journal, masker = f.journal, f.secrets.masker
    for step in PIPELINE:
        done = journal.result_of(step.name)
        if done is not None and step.settled(done):
            f.results[step.name] = done
            _event(f, step.name, "skipped", done, "done before the resume")
            continue
        journal.start(step.name)
        checkpoint(f"{step.name}:start")
        _event(f, step.name, "start", {})
        try:
            result = step.run(f)
        except (Refused, Conflict) as exc:
            journal.failed(step.name, str(exc))
            raise
        except Exception as exc:
            message = masker.text(
                exc.message if isinstance(exc, DeplatError) else f"{type(exc).__name__}: {exc}"
            )
            with contextlib.suppress(FilesystemError):  # a full disk: the step stays "started"
                journal.failed(step.name, message)
            _event(f, step.name, "failed", {"error": message}, message)
            raise
        journal.done(step.name, result)
        f.results[step.name] = result
        _event(f, step.name, "done", result)
        checkpoint(step.name)


def _event(f: Failover, step: str, status: str, data: dict[str, Any], message: str = "") -> None:
    payload = f.secrets.masker.data({"step": step, "status": status, **data})
    f.emit(Event(EventKind.FAILOVER_STEP, message or f"{step}: {status}", site=f.new, data=payload))


def _supersede_dead(spec: Spec, secrets: SecretStore, to: str) -> None:
    """Close unfinished journals of dead processes: a new failover replaces them, and a later
    ``--resume`` must not replay a stale move."""
    for journal in Journal.all(spec):
        if journal.begin and not journal.finished and journal.live_owner() is None:
            journal.masker = secrets.masker
            journal.end("superseded", {"by_failover_to": to, "pid": os.getpid()})


def _finish(f: Failover, result: FailoverResult) -> FailoverResult:
    result.steps = f.journal.steps()
    result.finished_at = time.time()
    result.message = f.secrets.masker.text(result.message)
    data = f.secrets.masker.data(result.to_dict())
    f.emit(Event(EventKind.FAILOVER_END, f"failover {result.outcome}", site=result.to_site, data=data))
    return result
