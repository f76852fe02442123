"""Backups: copies of each stateful service's data, kept outside the site that made them.

A failover restores the newest backup of every stateful service onto the target; the backup's age
at the moment of the failure is the RPO.

``make_store`` gives restic (``ResticBackupStore``, over ``deplat.data.restic``): the spec's
``backups.repositories``, or a local directory repository under ``backups.store``. The home-made
stores below remain for ``s3://`` stores and their tests until they are removed.
``BackupStore`` is the seam where object storage plugs in
(``S3BackupStore`` implements the same five methods over any S3 API; a GCS store would too).
``LocalBackupStore`` keeps them in a directory (``spec.backups.store``, default ``.deplat/backups``
beside the spec, never inside a site's own dir)::

    <root>/<service>/<id>/data/...        the copied files
    <root>/<service>/<id>/manifest.json   Backup fields + sha256 and size of every file

A backup is written to ``<root>/<service>/.partial-<id>/``, every file fsynced, then renamed into
place: a directory with a manifest is complete, anything else is ignored and swept later.

Consistency: each file is copied and the source re-checked (size, mtime); a file that changed
during its copy is copied again (bounded). Files that keep changing are copied as they are and
listed in the manifest as ``unstable`` (an append-only log then holds a clean prefix, possibly a
torn last record that was never acknowledged). ``taken_at`` is the time the copy STARTED, so the
reported RPO is an upper bound.
"""

from __future__ import annotations

import builtins  # the stores' own `list` method shadows the type inside their classes
import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deplat.errors import InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard

if TYPE_CHECKING:
    from deplat.spec.model import Spec

MANIFEST = "manifest.json"
COPY_ATTEMPTS = 3
CHUNK = 1024 * 1024


@dataclass
class Backup:
    service: str
    site: str  # the site whose data this is
    id: str
    taken_at: float  # wall-clock time the copy started
    location: str  # where it is: a directory, or later an object-storage URL
    files: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Restored:
    service: str
    backup_id: str | None  # None: no backup of this service exists; nothing was written
    taken_at: float | None
    rpo_seconds: float | None  # reference_time - taken_at: the age of the restored data
    site: str | None = None  # the site the backup was taken from
    path: str = ""  # the data dir that was replaced
    files: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackupStore(Protocol):
    def put(self, site: str, service: str, source_dir: Path) -> Backup: ...

    def latest(self, service: str) -> Backup | None: ...

    def fetch(self, backup: Backup, target_dir: Path) -> None: ...

    def list(self, service: str) -> list[Backup]: ...

    def prune(self, service: str, keep: int) -> builtins.list[Backup]: ...


class BackupCorrupt(OperationFailed):
    """A backup's files do not match its manifest."""


# --- files -------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_file(src: Path, dst: Path) -> tuple[str, int, bool]:
    """Copy ``src`` to ``dst`` (fsynced); returns (sha256, size, stable)."""
    for _ in range(COPY_ATTEMPTS):
        before = src.stat()
        digest = hashlib.sha256()
        size = 0
        with src.open("rb") as fin, dst.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        after = src.stat()
        if (before.st_size, before.st_mtime_ns) == (
            after.st_size,
            after.st_mtime_ns,
        ) and size == after.st_size:
            shutil.copystat(src, dst)
            return digest.hexdigest(), size, True
    shutil.copystat(src, dst)
    return digest.hexdigest(), size, False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_tree(source: Path, target: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Copy regular files and dirs of ``source`` into ``target`` (fsynced). Symlinks are skipped:
    a data dir's link may point anywhere. Returns ({relpath: {sha256, size}}, unstable relpaths)."""
    files: dict[str, dict[str, Any]] = {}
    unstable: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        rel_dir = here.relative_to(source)
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for d in dirnames:
            (target / rel_dir / d).mkdir(exist_ok=True)
        for name in sorted(filenames):
            src = here / name
            if src.is_symlink() or not src.is_file():
                continue
            rel = (rel_dir / name).as_posix()
            digest, size, stable = _copy_file(src, target / rel)
            files[rel] = {"sha256": digest, "size": size}
            if not stable:
                unstable.append(rel)
        _fsync_dir(target / rel_dir)
    return files, unstable


def _new_id(taken_at: float) -> str:
    """Sortable by time, unique: ``20261124T221500.123456Z-1a2b3c``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(taken_at))
    return f"{stamp}.{int(taken_at * 1e6) % 1_000_000:06d}Z-{uuid.uuid4().hex[:6]}"


# --- the local store ---------------------------------------------------------------------------


@dataclass
class LocalBackupStore:
    """Backups in a directory on this machine (see the module docstring for the layout)."""

    root: Path
    clock: Any = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def _service_dir(self, service: str) -> Path:
        return self.root / service

    def put(self, site: str, service: str, source_dir: Path) -> Backup:
        source_dir = Path(source_dir)
        if not source_dir.is_dir():
            raise OperationFailed(f"no data to back up: {source_dir} is not a directory")
        taken_at = float(self.clock())
        backup_id = _new_id(taken_at)
        parent = self._service_dir(service)
        parent.mkdir(parents=True, exist_ok=True)
        partial = parent / f".partial-{backup_id}"
        final = parent / backup_id
        try:
            files, unstable = copy_tree(source_dir, partial / "data")
            backup = Backup(
                service=service,
                site=site,
                id=backup_id,
                taken_at=taken_at,
                location=str(final),
                files=len(files),
                bytes=sum(f["size"] for f in files.values()),
            )
            manifest = {
                **backup.to_dict(),
                "manifest_version": 1,
                "files_sha256": files,
                "unstable": unstable,
            }
            with (partial / MANIFEST).open("w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(partial)
            os.replace(partial, final)
            _fsync_dir(parent)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return backup

    def _read(self, path: Path) -> tuple[Backup, dict[str, Any]] | None:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            backup = Backup(**{k: manifest[k] for k in Backup.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        backup.location = str(path)  # the store may have been moved since
        return backup, manifest

    def list(self, service: str) -> list[Backup]:
        """Complete backups of ``service``, oldest first."""
        parent = self._service_dir(service)
        if not parent.is_dir():
            return []
        found = [self._read(p) for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted((b for b, _ in filter(None, found)), key=lambda b: (b.taken_at, b.id))

    def latest(self, service: str) -> Backup | None:
        backups = self.list(service)
        return backups[-1] if backups else None

    def fetch(self, backup: Backup, target_dir: Path) -> None:
        """Copy the backup's files into ``target_dir`` (created; must be empty) and verify each
        file against the manifest; ``BackupCorrupt`` when one does not match."""
        read = self._read(Path(backup.location))
        if read is None:
            raise OperationFailed(f"backup {backup.id} of {backup.service} is missing or has no manifest")
        _, manifest = read
        target_dir = Path(target_dir)
        if target_dir.exists() and any(target_dir.iterdir()):
            raise OperationFailed(f"cannot fetch a backup into {target_dir}: it is not empty")
        copy_tree(Path(backup.location) / "data", target_dir)
        for rel, meta in manifest.get("files_sha256", {}).items():
            path = target_dir / rel
            if not path.is_file() or _sha256(path) != meta["sha256"]:
                raise BackupCorrupt(
                    f"backup {backup.id} of {backup.service}: {rel} does not match its manifest"
                )

    def prune(self, service: str, keep: int) -> builtins.list[Backup]:
        """Remove all but the newest ``keep`` backups (and stale partial copies); returns the removed."""
        keep = max(int(keep), 1)
        backups = self.list(service)
        removed = backups[:-keep] if len(backups) > keep else []
        for backup in removed:
            shutil.rmtree(backup.location, ignore_errors=True)
        parent = self._service_dir(service)
        if parent.is_dir():
            for stale in parent.glob(".partial-*"):
                with contextlib.suppress(OSError):
                    if time.time() - stale.stat().st_mtime > 3600:
                        shutil.rmtree(stale, ignore_errors=True)
        return removed


# --- an object-storage store --------------------------------------------------------------------


@dataclass
class S3BackupStore:
    """Backups in an S3 (or S3-compatible) bucket, the same layout as ``LocalBackupStore``::

        s3://<bucket>/<prefix>/<service>/<id>/data/<file>
        s3://<bucket>/<prefix>/<service>/<id>/manifest.json      written last: present = complete

    ``put`` first makes the same consistent local copy as the local store (in a temp dir), then
    uploads it. boto3 is imported only when a client is first needed.
    """

    bucket: str
    prefix: str = ""
    client: Any = field(default=None, repr=False)
    clock: Any = field(default=time.time, repr=False)

    def _s3(self) -> Any:
        if self.client is None:
            import boto3
            from botocore.config import Config

            self.client = boto3.client("s3", config=Config(retries={"total_max_attempts": 3}))
        return self.client

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _location(self, service: str, backup_id: str) -> str:
        return f"s3://{self.bucket}/{self._key(service, backup_id)}"

    def put(self, site: str, service: str, source_dir: Path) -> Backup:
        import tempfile

        source_dir = Path(source_dir)
        if not source_dir.is_dir():
            raise OperationFailed(f"no data to back up: {source_dir} is not a directory")
        taken_at = float(self.clock())
        backup_id = _new_id(taken_at)
        s3 = self._s3()
        with tempfile.TemporaryDirectory(prefix="deplat-backup-") as tmp:
            files, unstable = copy_tree(source_dir, Path(tmp))
            for rel in files:
                s3.upload_file(str(Path(tmp) / rel), self.bucket, self._key(service, backup_id, "data", rel))
        backup = Backup(
            service=service,
            site=site,
            id=backup_id,
            taken_at=taken_at,
            location=self._location(service, backup_id),
            files=len(files),
            bytes=sum(f["size"] for f in files.values()),
        )
        manifest = {**backup.to_dict(), "manifest_version": 1, "files_sha256": files, "unstable": unstable}
        s3.put_object(
            Bucket=self.bucket,
            Key=self._key(service, backup_id, MANIFEST),
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
        return backup

    def _manifest(self, service: str, backup_id: str) -> dict[str, Any] | None:
        s3 = self._s3()
        try:
            answer = s3.get_object(Bucket=self.bucket, Key=self._key(service, backup_id, MANIFEST))
        except s3.exceptions.NoSuchKey:
            return None
        try:
            return dict(json.loads(answer["Body"].read()))
        except ValueError:
            return None

    def _ids(self, service: str) -> list[str]:
        pages = (
            self._s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=self._key(service) + "/", Delimiter="/")
        )
        return [
            cp["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            for page in pages
            for cp in page.get("CommonPrefixes", [])
        ]

    def list(self, service: str) -> list[Backup]:
        """Complete backups of ``service``, oldest first (one GET per backup for its manifest)."""
        found: list[Backup] = []
        for backup_id in self._ids(service):
            manifest = self._manifest(service, backup_id)
            if manifest is None:
                continue
            try:
                backup = Backup(**{k: manifest[k] for k in Backup.__dataclass_fields__})
            except (KeyError, TypeError):
                continue
            backup.location = self._location(service, backup_id)
            found.append(backup)
        return sorted(found, key=lambda b: (b.taken_at, b.id))

    def latest(self, service: str) -> Backup | None:
        backups = self.list(service)
        return backups[-1] if backups else None

    def fetch(self, backup: Backup, target_dir: Path) -> None:
        manifest = self._manifest(backup.service, backup.id)
        if manifest is None:
            raise OperationFailed(f"backup {backup.id} of {backup.service} is missing or has no manifest")
        target_dir = Path(target_dir)
        if target_dir.exists() and any(target_dir.iterdir()):
            raise OperationFailed(f"cannot fetch a backup into {target_dir}: it is not empty")
        target_dir.mkdir(parents=True, exist_ok=True)
        s3 = self._s3()
        for rel, meta in manifest.get("files_sha256", {}).items():
            path = target_dir / rel
            if path.resolve() != target_dir.resolve() and target_dir.resolve() not in path.resolve().parents:
                raise BackupCorrupt(
                    f"backup {backup.id} of {backup.service}: {rel} points outside the target"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(self.bucket, self._key(backup.service, backup.id, "data", rel), str(path))
            if _sha256(path) != meta["sha256"]:
                raise BackupCorrupt(
                    f"backup {backup.id} of {backup.service}: {rel} does not match its manifest"
                )
            with path.open("rb") as f:
                os.fsync(f.fileno())

    def prune(self, service: str, keep: int) -> builtins.list[Backup]:
        keep = max(int(keep), 1)
        backups = self.list(service)
        removed = backups[:-keep] if len(backups) > keep else []
        s3 = self._s3()
        for backup in removed:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(service, backup.id) + "/"
            )
            # the manifest first: a backup pruned halfway is incomplete, never listed again
            s3.delete_object(Bucket=self.bucket, Key=self._key(service, backup.id, MANIFEST))
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return removed


# --- restic ------------------------------------------------------------------------------------------


@dataclass
class ResticBackupStore:
    """Backups as restic snapshots (``deplat.data.restic``) in every repository of the spec: the
    same five methods as the stores above, so the watcher, the failover and the drill use restic
    for real. ``put`` writes each repository; ``latest`` takes the newest snapshot across the
    repositories that answer, each within its own deadline."""

    repositories: list[Any]  # deplat.data.restic.Repository
    password: str = field(repr=False)
    app: str
    base_dir: Path
    prune_slack: int = 5  # forget/prune once this many snapshots beyond ``keep`` piled up

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
        newest = self._snapshots(service)
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
        return Backup(
            service=service,
            site=site,
            id=done.snapshot,
            taken_at=taken_at,
            location=self.repositories[-1].name,
            files=done.files,
            bytes=done.bytes,
        )

    def _snapshots(self, service: str) -> list[Any]:
        from deplat.data import repositories as repos
        from deplat.data.restic import order
        from deplat.transport import DirectTransport

        states = repos.survey(self.repositories, self.password, DirectTransport(self.base_dir), app=self.app)
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
        found = self._snapshots(service)
        return self._backup(found[-1]) if found else None

    def fetch(self, backup: Backup, target_dir: Path) -> None:
        repo = next((r for r in self.repositories if r.name == backup.location), self.repositories[0])
        target_dir = Path(target_dir)
        if target_dir.exists() and any(target_dir.iterdir()):
            raise OperationFailed(f"cannot fetch a backup into {target_dir}: it is not empty")
        self._restic(repo).restore(backup.id, str(target_dir))

    def prune(self, service: str, keep: int) -> builtins.list[Backup]:
        """Keep the newest ``keep`` snapshots of each site and service (restic forget --prune),
        batched: only once ``prune_slack`` more piled up, as a prune rewrites packs."""
        held = self.list(service)
        if len(held) <= keep + self.prune_slack:
            return []
        for repo in self.repositories:
            self._restic(repo).forget(app=self.app, keep=keep)
        return held[: len(held) - keep]


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


# --- the spec's store, and whole sites ---------------------------------------------------------


def make_store(spec: Spec) -> BackupStore:
    """The store ``spec.backups.store`` names: a directory (relative to the spec) or ``s3://BUCKET/PREFIX``.

    An S3 store uses boto3's usual sources for credentials, region and endpoint (``AWS_PROFILE``,
    ``AWS_ACCESS_KEY_ID``..., ``AWS_ENDPOINT_URL_S3`` for S3-compatible storage).
    """
    from deplat.paths import home

    where = spec.backups.store
    if where.startswith("s3://"):
        bucket, _, prefix = where[len("s3://") :].partition("/")
        if not bucket:
            raise InputError(f"backups.store: {where} names no bucket", hint="s3://BUCKET/PREFIX")
        return S3BackupStore(bucket, prefix.strip("/"))
    if "://" in where:
        scheme = where.split("://", 1)[0]
        raise InputError(
            f"backups.store: {scheme}:// stores are not supported yet ({where})",
            hint="use a directory, e.g. .deplat/backups; object-storage stores plug into BackupStore next",
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
            f"site '{site}' is a {where.provider.value} site: backups of cloud sites' data "
            "are not implemented yet from the operator's side (only local sites)",
            hint="a cloud primary backs itself up on its deplat-backup@ timers, and a cold cloud "
            "target restores the newest snapshot at first boot; restoring onto a running (warm) "
            "cloud site is not possible yet",
        )


def backup_site(spec: Spec, site: str, store: BackupStore, emit: Emit = discard) -> list[Backup]:
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
    store: BackupStore,
    *,
    reference_time: float,
    emit: Emit = discard,
) -> list[Restored]:
    """Restore the newest backup of every stateful service into ``target_site``'s data dirs.

    ``reference_time`` is when the source was lost (e.g. the suspension's detection): each
    ``Restored.rpo_seconds`` is ``reference_time - taken_at``.

    The caller must make sure the target's stateful services are STOPPED while this runs, and
    start them after (a running process keeps the files it holds open and what it loaded into
    memory). For a cold site, call it before ``up``; for a warm one, stop, restore, start.

    Each data dir is replaced whole: the backup is fetched and verified into a sibling temp dir,
    then swapped in by two renames (old dir aside, new dir in), then the old dir is removed. A
    crash between the two renames leaves ``<dir>.old-*`` and no ``<dir>``: rerunning restores again.
    Only the store and the target's dir are touched; the backup's source site is never read.
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
        token = uuid.uuid4().hex[:8]
        incoming = target.parent / f".{name}.restore-{token}"
        aside = target.parent / f"{name}.old-{token}"
        try:
            store.fetch(backup, incoming)
            _fsync_dir(incoming)
            if target.exists():
                os.replace(target, aside)
            os.replace(incoming, target)
            _fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        shutil.rmtree(aside, ignore_errors=True)
        for stale in target.parent.glob(f"{name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        restored = Restored(
            service=name,
            backup_id=backup.id,
            taken_at=backup.taken_at,
            rpo_seconds=reference_time - backup.taken_at,
            site=backup.site,
            path=str(target),
            files=backup.files,
            bytes=backup.bytes,
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
