"""Backups of LOCAL sites' data, as restic snapshots (``deplat.data.restic``).

A failover restores the newest backup of every stateful service onto the target; the backup's age
at the moment of the failure is the RPO. This module serves local sites, whose data folders are on
this machine (``.deplat/local/<site>/data/<service>/``): restic runs here, directly. Cloud sites'
data goes over SSH (``deplat.remote.data``); ``deplat.failover.data`` picks one or the other.

``make_store`` gives the spec's restic repositories (``backups.repositories``), or a local directory
repository under ``backups.store``. An ``s3://`` ``backups.store`` is refused: object storage is
declared as a typed restic repository under ``backups.repositories`` (its credentials named as
secrets, its own deadline), one way to say it rather than two.
"""

from __future__ import annotations

import builtins  # the store's own `list` method shadows the type inside its class
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.data.records import Backup, Restored
from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard

if TYPE_CHECKING:
    from deplat.spec.model import Spec

__all__ = [
    "Backup",
    "ResticBackupStore",
    "Restored",
    "backup_site",
    "make_store",
    "restic_store",
    "restore_site",
    "service_data_dir",
]


@dataclass
class ResticBackupStore:
    """Backups as restic snapshots (``deplat.data.restic``) in every repository of the spec: the
    watcher, the failover and the drill use restic for real. ``put`` writes each repository;
    ``latest`` takes the newest snapshot across the repositories that answer, each within its own
    deadline."""

    repositories: list[Any]  # deplat.data.restic.Repository
    password: str = field(repr=False)
    app: str
    base_dir: Path
    prune_slack: int = 5  # forget/prune once this many snapshots beyond ``keep`` piled up
    # per service, how many snapshots the repositories held after its last ``put`` (from the survey
    # that ``put`` makes anyway, so that ``prune`` need not list them again)
    _held: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def _restic(self, repo: Any) -> Any:
        from deplat.data.restic import Restic
        from deplat.transport import DirectTransport

        return Restic(repo, self.password, DirectTransport(self.base_dir))

    def put(self, site: str, service: str, source_dir: Path) -> Backup:
        from deplat.data.restic import next_seq

        source_dir = Path(source_dir)
        if not source_dir.is_dir():
            raise OperationFailed(f"no data to back up: {source_dir} is not a directory")
        taken_at = time.time()  # restic's own time is when it started, a moment later
        states = self._survey()
        newest = self._newest(states, service)
        seq = next_seq(newest)  # across every repository: see deplat.data.restic
        holding = {snap.repository for snap in newest}  # these exist: no need to ask
        done = None
        for repo in self.repositories:
            restic = self._restic(repo)
            if repo.name not in holding:
                restic.init()
            empty = not any(source_dir.iterdir())
            done = restic.backup(
                str(source_dir), site=site, app=self.app, service=service, empty=empty, seq=seq
            )
        assert done is not None
        self._held[service] = 1 + max((s.per_service.get(service, 0) for s in states if s.ok), default=0)
        return Backup(
            service=service,
            site=site,
            id=done.snapshot,
            taken_at=taken_at,
            location=self.repositories[-1].name,
            files=done.files,
            bytes=done.bytes,
        )

    def _survey(self) -> builtins.list[Any]:
        from deplat.data import repositories as repos
        from deplat.transport import DirectTransport

        return repos.survey(self.repositories, self.password, DirectTransport(self.base_dir), app=self.app)

    @staticmethod
    def _newest(states: builtins.list[Any], service: str) -> builtins.list[Any]:
        """Each repository's newest snapshot of ``service``, oldest first."""
        from deplat.data.restic import order

        found = [s.newest[service] for s in states if s.ok and service in s.newest]
        return sorted(found, key=order)  # by sequence number: a clock jump cannot reorder them

    @staticmethod
    def _backup(snap: Any) -> Backup:
        return Backup(snap.service, snap.site, snap.id, snap.time, snap.repository, 0, 0)

    def list(self, service: str) -> list[Backup]:
        """Snapshots of ``service`` in the first repository that answers, oldest first."""
        from deplat.data.restic import ResticFailed

        for repo in self.repositories:
            try:
                snaps = self._restic(repo).snapshots(app=self.app, service=service)
            except ResticFailed:
                continue
            return [self._backup(s) for s in snaps]
        return []

    def latest(self, service: str) -> Backup | None:
        found = self._newest(self._survey(), service)
        return self._backup(found[-1]) if found else None

    def fetch(self, backup: Backup, target_dir: Path) -> None:
        """Replace ``target_dir`` with the backup's files (restored beside it, then swapped in: a
        failed restore leaves the old folder in place)."""
        repo = next((r for r in self.repositories if r.name == backup.location), self.repositories[0])
        self._restic(repo).restore(backup.id, str(target_dir))

    def prune(self, service: str, keep: int) -> int:
        """Keep the newest ``keep`` snapshots of each site and service (restic forget --prune),
        batched: only once ``prune_slack`` more piled up, as a prune rewrites packs. Returns how
        many were beyond ``keep`` (0: nothing pruned). Right after a ``put`` of ``service`` the
        count is the one its survey saw; otherwise the snapshots are listed."""
        held = self._held.pop(service, None)
        if held is None:
            held = len(self.list(service))
        if held <= keep + self.prune_slack:
            return 0
        for repo in self.repositories:
            self._restic(repo).forget(app=self.app, keep=keep)
        return held - keep


def restic_store(spec: Spec, secrets: Any = None) -> ResticBackupStore:
    """The spec's restic repositories as a store. With none declared: a local directory
    repository under ``backups.store``; its password is the ``backups.password`` secret or, for
    that local repository only, a random one kept owner-only beside it (a rehearsal needs no
    setup; such a repository protects against losing a site, not against reading this disk)."""
    import secrets as random

    from deplat.data import repositories as repos
    from deplat.files import private_dir, write_text_atomic
    from deplat.secrets import SecretStore

    store = secrets if secrets is not None else SecretStore(spec)
    found = repos.repositories(spec, store)
    password = store.get(spec.backups.password)
    if password is None and spec.backups.repositories:
        password = repos.password(spec, store)  # raises, naming the secret
    if password is None:
        key_file = Path(found[0].url).parent / "restic-password"
        private_dir(key_file.parent)
        if not key_file.exists():
            write_text_atomic(key_file, random.token_urlsafe(32))
        password = key_file.read_text(encoding="utf-8").strip()
        store.masker.add(password)
    return ResticBackupStore(found, password, spec.app, spec.base_dir)


# --- the spec's store, and whole local sites -----------------------------------------------------


def make_store(spec: Spec) -> ResticBackupStore:
    """The spec's restic repositories (``restic_store``); ``InputError`` for a ``backups.store``
    that is not a directory, or one inside the local sites' folder."""
    from deplat.paths import home

    where = spec.backups.store
    if "://" in where:
        scheme = where.split("://", 1)[0]
        raise InputError(
            f"backups.store: {where} is not a directory: {scheme}:// stores are not supported",
            hint="declare the bucket as a restic repository under backups.repositories "
            "(name, type: s3|gcs|hcloud, bucket, prefix, access_key, secret_key) and keep "
            "backups.store a directory",
        )
    root = Path(where).expanduser()
    if not root.is_absolute():
        root = spec.base_dir / root
    root = root.resolve()
    sites_dir = (home(spec) / "local").resolve()
    if root == sites_dir or sites_dir in root.parents:
        raise InputError(
            f"backups.store: {where} is inside the local sites' dir {sites_dir}",
            hint="keep backups outside every site, e.g. .deplat/backups",
        )
    return restic_store(spec)


def service_data_dir(spec: Spec, site: str, service: str) -> Path:
    """A local site's data dir for ``service``: ``.deplat/local/<site>/data/<service>/``."""
    from deplat.paths import local_site_dir

    return local_site_dir(spec, site) / "data" / service


def _require_local(spec: Spec, site: str) -> None:
    from deplat.providers import provider_of

    where = spec.site(site)
    if not provider_of(where).capabilities.runs_locally:
        raise OperationFailed(
            f"site '{site}' is a {where.provider.value} site: its data is on its VM, "
            "reached over SSH (deplat.failover.data), not in a folder here"
        )


def backup_site(spec: Spec, site: str, store: ResticBackupStore, emit: Emit = discard) -> list[Backup]:
    """Back up every stateful service of the local site ``site``, then prune to ``backups.keep``.

    A service whose data dir does not exist yet (never started) is skipped with a
    ``backup.skip`` event. Reads the site's files only; never stops or signals its services.
    """
    _require_local(spec, site)
    taken: list[Backup] = []
    for name, service in spec.services.items():
        if not service.stateful:
            continue
        source = service_data_dir(spec, site, name)
        if not source.is_dir():
            emit(
                Event(
                    EventKind.BACKUP_SKIP,
                    f"{name}: no data dir yet at {source}",
                    site=site,
                    data={"service": name},
                )
            )
            continue
        backup = store.put(site, name, source)
        taken.append(backup)
        emit(
            Event(
                EventKind.BACKUP_DONE,
                f"{name}: {backup.files} files, {backup.bytes} bytes",
                site=site,
                data=backup.to_dict(),
            )
        )
        store.prune(name, spec.backups.keep)
    return taken


def restore_site(
    spec: Spec,
    target_site: str,
    store: ResticBackupStore,
    *,
    reference_time: float,
    emit: Emit = discard,
) -> list[Restored]:
    """Restore the newest backup of every stateful service into the local site ``target_site``'s
    data dirs.

    ``reference_time`` is when the source was lost (e.g. the suspension's detection): each
    ``Restored.rpo_seconds`` is ``reference_time - taken_at``.

    The caller restarts the target's stateful services after (a running process keeps the files it
    holds open and what it loaded into memory). Each data dir is replaced whole: restored beside
    it, then swapped in by two renames (``Restic.restore``); a failed restore leaves the old one.
    Only the repositories and the target's dir are touched; the backup's source site is never read.
    """
    _require_local(spec, target_site)
    results: list[Restored] = []
    for name, service in spec.services.items():
        if not service.stateful:
            continue
        backup = store.latest(name)
        target = service_data_dir(spec, target_site, name)
        if backup is None:
            emit(
                Event(
                    EventKind.RESTORE_MISSING,
                    f"{name}: no backup to restore",
                    site=target_site,
                    data={"service": name},
                )
            )
            results.append(Restored(name, None, None, None, path=str(target)))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(backup, target)
        restored = Restored(
            service=name,
            backup_id=backup.id,
            taken_at=backup.taken_at,
            rpo_seconds=reference_time - backup.taken_at,
            site=backup.site,
            path=str(target),
            files=backup.files,
            bytes=backup.bytes,
            repository=backup.location,
        )
        results.append(restored)
        emit(
            Event(
                EventKind.RESTORE_DONE,
                f"{name}: backup {backup.id} from {backup.site}, {restored.rpo_seconds:.1f}s old",
                site=target_site,
                data=restored.to_dict(),
            )
        )
    return results
