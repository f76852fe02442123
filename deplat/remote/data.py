"""A cloud site's data over SSH: restore the newest snapshots onto it, or back it up from it.

restic runs ON the site (Debian's restic, installed by the bootstrap) through the site's SSH
transport: the repository's credentials and the restic password travel as environment values on the
command's stdin (``deplat.transport.ssh``), never in argv, never in a file.

Restore (a warm target): the operator reads the repositories directly (``repositories.survey``,
each within its own deadline) and picks, per stateful service, the newest snapshot across those
that answer. The services whose data is replaced are stopped first (their containers hold files
open and state in memory) and started again afterwards, whatever happened: a failed restore leaves
the old data in place (``Restic.restore`` swaps a complete folder in) and the service running on it.
When a snapshot cannot be restored from one repository, the next newest is tried.

Back up (the old primary of a planned failover, its services stopped): every stateful service's
data folder goes to every repository, as the next snapshot of its service's sequence (one more than
the highest ``seq`` in the repositories that answer, see ``deplat.data.restic``); a repository that
fails is reported, and the backup fails only when no repository took it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from deplat.data.records import Backup, Restored
from deplat.data.repositories import survey, unreachable
from deplat.data.restic import EMPTY_MARKER, Repository, Restic, ResticFailed, Snapshot, next_seq, order
from deplat.errors import OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.remote import services as units
from deplat.transport import DirectTransport, TransportError

if TYPE_CHECKING:
    from deplat.remote.connect import RemoteSite
    from deplat.spec.model import Spec

# exit codes of the data folder's check on the site
_MISSING, _EMPTY = 3, 4
NO_REPOSITORY = "there is no restic repository"  # restic.Restic's message for an absent repository
_FOLDER_CHECK = 'test -d "$1" || exit 3; [ -n "$(ls -A "$1")" ] || exit 4'


def stateful(spec: Spec) -> list[str]:
    return [name for name, svc in spec.services.items() if svc.stateful]


def _candidates(
    spec: Spec, repos: list[Repository], password: str, *, strict: bool = True
) -> dict[str, list[Snapshot]]:
    """Per stateful service, the newest snapshot of each repository that answered, newest first
    (``deplat.data.restic.order``: a clock jump cannot make a stale one win). ``strict``:
    ``OperationFailed`` when no repository answered (nothing is known, nothing may be assumed); a
    repository that answered it does not exist yet counts as an answer (nothing to restore)."""
    return _surveyed(spec, repos, password, strict=strict)[0]


def _surveyed(
    spec: Spec, repos: list[Repository], password: str, *, strict: bool
) -> tuple[dict[str, list[Snapshot]], set[str]]:
    """``_candidates``, and the names of the repositories that answered (so they exist)."""
    states = survey(repos, password, DirectTransport(spec.base_dir), app=spec.app)
    failed = [s for s in unreachable(states) if NO_REPOSITORY not in (s.error or "")]
    if strict and states and not any(s.ok for s in states) and failed:
        errors = "; ".join(f"{s.repository}: {s.error}" for s in failed)
        raise OperationFailed(
            f"no backup repository answered: {errors}",
            hint="`deplat backups` shows each repository; retry when one answers (deplat failover --resume)",
        )
    found: dict[str, list[Snapshot]] = {}
    for name in stateful(spec):
        snaps = [s.newest[name] for s in states if s.ok and name in s.newest]
        found[name] = sorted(snaps, key=order, reverse=True)  # by sequence number, then time
    return found, {s.repository for s in states if s.ok}


def restore(
    remote: RemoteSite,
    spec: Spec,
    repos: list[Repository],
    password: str,
    *,
    reference_time: float,
    timeout: float,
    emit: Emit = discard,
) -> list[Restored]:
    """Restore the newest snapshot of every stateful service onto the site ``remote`` (see the
    module docstring); one ``Restored`` per stateful service."""
    site, layout = remote.site, remote.layout
    candidates = _candidates(spec, repos, password)
    by_name = {r.name: r for r in repos}
    results: dict[str, Restored] = {}
    chosen = [name for name in stateful(spec) if candidates[name]]
    for name in stateful(spec):
        if not candidates[name]:
            emit(
                Event(
                    EventKind.RESTORE_MISSING,
                    f"{name}: no backup to restore",
                    site=site,
                    data={"service": name},
                )
            )
            results[name] = Restored(name, None, None, None, path=layout.service_data(name))
    if not chosen:
        return list(results.values())
    stopped = units.stop(remote, chosen, timeout)
    try:
        if set(stopped) != set(chosen):
            left = ", ".join(n for n in chosen if n not in stopped)
            raise OperationFailed(f"could not stop {left} on {site} before restoring its data")
        for name in chosen:
            results[name] = _restore_one(remote, by_name, password, name, candidates[name], reference_time)
    finally:
        healthy = units.start(remote, spec, chosen, timeout)
    for name in chosen:
        item = results[name]
        item.started = name in healthy
        emit(
            Event(
                EventKind.RESTORE_DONE,
                f"{name}: snapshot {str(item.backup_id)[:8]} from {item.site} ({item.repository}), "
                f"{item.rpo_seconds or 0.0:.1f}s old",
                site=site,
                data=item.to_dict(),
            )
        )
    return [results[name] for name in stateful(spec)]


def _restore_one(
    remote: RemoteSite,
    repos: dict[str, Repository],
    password: str,
    name: str,
    snaps: list[Snapshot],
    reference_time: float,
) -> Restored:
    target = remote.layout.service_data(name)
    errors: list[str] = []
    for snap in snaps:
        try:
            Restic(repos[snap.repository], password, remote.transport).restore(snap.id, target)
        except (ResticFailed, TransportError) as exc:
            errors.append(f"{snap.repository}: {exc.message}")
            continue
        return Restored(
            service=name,
            backup_id=snap.id,
            taken_at=snap.time,
            rpo_seconds=reference_time - snap.time,
            site=snap.site,
            path=target,
            repository=snap.repository,
        )
    raise OperationFailed(
        f"could not restore {name} onto {remote.site} from any repository: {'; '.join(errors)}",
        hint="its old data is still in place; `deplat failover --resume` tries again",
    )


def back_up(
    remote: RemoteSite, spec: Spec, repos: list[Repository], password: str, *, emit: Emit = discard
) -> list[Backup]:
    """Back up every stateful service's data folder on the site ``remote`` to every repository
    (see the module docstring); a service whose folder does not exist yet is skipped."""
    site, transport = remote.site, remote.transport
    # each backup continues its sequence; a repository that answered exists (no check before writing)
    newest, answered = _surveyed(spec, repos, password, strict=False)
    taken: list[Backup] = []
    for name in stateful(spec):
        path = remote.layout.service_data(name)
        folder = transport.run(["sh", "-c", _FOLDER_CHECK, "sh", path], timeout=60).returncode
        if folder == _MISSING:
            emit(
                Event(
                    EventKind.BACKUP_SKIP,
                    f"{name}: no data folder yet at {path}",
                    site=site,
                    data={"service": name},
                )
            )
            continue
        started = time.time()
        source, scratch = path, None
        if folder == _EMPTY:  # restic refuses an empty snapshot: one marker file says "empty"
            scratch = transport.check(["mktemp", "-d"], timeout=60).stdout.strip()
            transport.put(b"this folder was empty\n", f"{scratch}/{EMPTY_MARKER}", mode=0o600)
            source = scratch
        try:
            seq = next_seq(newest[name])
            backup, failed = _to_every_repository(
                remote, spec.app, repos, password, name, source, started, seq, answered
            )
        finally:
            if scratch:
                transport.run(["rm", "-rf", "--", scratch], timeout=60)
        taken.append(backup)
        emit(
            Event(
                EventKind.BACKUP_DONE,
                f"{name}: {backup.files} files, {backup.bytes} bytes",
                site=site,
                data=backup.to_dict() | {"failed_repositories": failed},
            )
        )
    return taken


def _to_every_repository(
    remote: RemoteSite,
    app: str,
    repos: list[Repository],
    password: str,
    name: str,
    source: str,
    started: float,
    seq: int,
    existing: set[str],
) -> tuple[Backup, list[str]]:
    """The first repository's snapshot, and the errors of the repositories that failed. Every
    repository at once (each restic run on the site spends most of its time opening its
    repository); one not in ``existing`` is created first if it is not there."""

    def one(repo: Repository) -> Backup:
        restic = Restic(repo, password, remote.transport)
        if repo.name not in existing:
            restic.init()
        done = restic.backup(source, site=remote.site, app=app, service=name, seq=seq)
        return Backup(name, remote.site, done.snapshot, started, repo.name, done.files, done.bytes)

    taken: list[Backup] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, len(repos)), thread_name_prefix="deplat-backup") as pool:
        for repo, future in [(repo, pool.submit(one, repo)) for repo in repos]:
            try:
                taken.append(future.result())
            except (ResticFailed, TransportError) as exc:
                errors.append(f"{repo.name}: {exc.message}")
    if not taken:
        raise OperationFailed(
            f"the backup of {name} on {remote.site} went to no repository: {'; '.join(errors)}",
            hint="`deplat backups` shows each repository; fix the one(s) failing and retry",
        )
    return taken[0], errors
