"""The spec's backup repositories as restic sees them, and what each holds right now.

``repositories(spec, secrets)`` turns ``backups.repositories`` into restic URLs and credential
environments (secret values looked up by name); with none declared, the local directory
``backups.store`` is the one repository (local sites, rehearsals).

``survey`` asks every repository at once, each under its own deadline: a repository on a suspended
or unreachable provider is reported failed after its deadline while the others answer. ``newest``
picks the newest snapshot of a service across the repositories that answered, in
``deplat.data.restic.order`` (its sequence number first: a clock jump cannot make a stale one win).
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.data.restic import Repository, Restic, ResticFailed, Snapshot, newest_per_service, order
from deplat.errors import ErrorClass, InputError
from deplat.spec.model import BackupRepository, RepositoryKind
from deplat.transport.base import Transport, TransportError

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

LOCAL_NAME = "local"


def endpoint(repo: BackupRepository) -> str:
    """The S3 API endpoint of a bucket-type repository."""
    if repo.endpoint:
        return repo.endpoint.rstrip("/")
    if repo.type is RepositoryKind.hcloud:
        return f"https://{repo.region}.your-objectstorage.com"
    if repo.type is RepositoryKind.gcs:
        return "https://storage.googleapis.com"
    return f"https://s3.{repo.region}.amazonaws.com" if repo.region else "https://s3.amazonaws.com"


def url(repo: BackupRepository, base_dir: Path) -> str:
    """restic's ``-r`` for ``repo`` (no credentials in it)."""
    if repo.type is RepositoryKind.local:
        path = Path(repo.path or "").expanduser()
        return str(path if path.is_absolute() else (base_dir / path).resolve())
    prefix = repo.prefix.strip("/")
    return f"s3:{endpoint(repo)}/{repo.bucket}" + (f"/{prefix}" if prefix else "")


def credentials(repo: BackupRepository, secrets: SecretStore) -> dict[str, str]:
    """The environment restic needs for ``repo``: its keys, looked up by their secret names."""
    if repo.type is RepositoryKind.local:
        return {}
    env: dict[str, str] = {}
    for var, name in (("AWS_ACCESS_KEY_ID", repo.access_key), ("AWS_SECRET_ACCESS_KEY", repo.secret_key)):
        if name:
            env[var] = secrets.require(name, f"credentials of the backup repository {repo.name}")
    if repo.region:
        env["AWS_DEFAULT_REGION"] = repo.region
    return env


def resolve(repo: BackupRepository, secrets: SecretStore, base_dir: Path) -> Repository:
    return Repository(
        name=repo.name,
        url=url(repo, base_dir),
        held_by=repo.held_by,
        env=credentials(repo, secrets),
        deadline=repo.deadline,
    )


def default_local(spec: Spec) -> Repository:
    """The local directory repository (``backups.store``) used when the spec declares none."""
    path = Path(spec.backups.store).expanduser()
    if not path.is_absolute():
        path = spec.base_dir / path
    return Repository(name=LOCAL_NAME, url=str(path.resolve() / "restic"), held_by="local", deadline=60.0)


def repositories(spec: Spec, secrets: SecretStore) -> list[Repository]:
    """Every repository of the spec, credentials resolved (``InputError`` names a missing secret)."""
    declared = spec.backups.repositories
    if not declared:
        return [default_local(spec)]
    return [resolve(r, secrets, spec.base_dir) for r in declared]


def for_site(spec: Spec, secrets: SecretStore, site: str) -> list[Repository]:
    """The repositories ``site``'s data goes to. A cloud site never relies on a local directory,
    nor on its own provider's storage alone; with nothing declared it cannot be backed up."""
    from deplat.providers import provider_of

    provider = spec.site(site).provider
    if provider_of(spec.site(site)).capabilities.runs_locally:
        return repositories(spec, secrets)
    if not spec.backups.repositories:
        raise InputError(
            f"site '{site}' is a {provider.value} site and the spec declares no backups.repositories",
            hint="declare restic repositories on at least two providers other than "
            f"{provider.value} under backups.repositories (s3, gcs, hcloud)",
        )
    return [r for r in repositories(spec, secrets) if r.held_by != "local"]


def password(spec: Spec, secrets: SecretStore) -> str:
    from deplat.data.restic import require_password

    return require_password(secrets.get(spec.backups.password), spec.backups.password)


# --- asking every repository at once ----------------------------------------------------------------


@dataclass
class RepositoryState:
    """What one repository answered (or why it did not) within its deadline."""

    repository: str
    url: str
    held_by: str
    ok: bool
    newest: dict[str, Snapshot] = field(default_factory=dict)  # per service
    snapshots: int = 0
    per_service: dict[str, int] = field(default_factory=dict)  # how many snapshots each service has
    checked: bool | None = None  # None: no check asked
    error: str | None = None
    error_class: ErrorClass | None = None
    seconds: float = 0.0

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "repository": self.repository,
            "url": self.url,
            "held_by": self.held_by,
            "ok": self.ok,
            "snapshots": self.snapshots,
            "newest": {
                service: snap.to_dict() | {"age_seconds": round(snap.age(now), 3)}
                for service, snap in sorted(self.newest.items())
            },
            "checked": self.checked,
            "error": self.error,
            "error_class": str(self.error_class) if self.error_class else None,
            "seconds": round(self.seconds, 3),
        }


def _ask(repo: Repository, password: str, transport: Transport, app: str, check: bool) -> RepositoryState:
    started = time.monotonic()
    state = RepositoryState(repo.name, repo.url, repo.held_by, ok=False)
    restic = Restic(repo, password, transport)
    try:
        found = restic.snapshots(app=app)
        state.snapshots = len(found)
        state.newest = newest_per_service(found)
        state.per_service = dict(Counter(snap.service for snap in found if snap.service is not None))
        if check:
            remaining = max(1.0, repo.deadline - (time.monotonic() - started))
            restic.check(timeout=remaining * 10)  # check reads the whole index: give it more time
            state.checked = True
        state.ok = True
    except ResticFailed as exc:
        state.error, state.error_class = exc.message, exc.error_class
        if check and state.snapshots:
            state.checked = False
    except TransportError as exc:  # the deadline passed, or restic could not be started
        state.error, state.error_class = exc.message, exc.error_class
    state.seconds = time.monotonic() - started
    return state


def survey(
    repos: list[Repository], password: str, transport: Transport, *, app: str, check: bool = False
) -> list[RepositoryState]:
    """Every repository's snapshots of ``app`` (newest per service), asked in parallel, each within
    its own deadline; one that does not answer is a failed state, never a wait for the others."""
    if not repos:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(repos))) as pool:
        futures = [pool.submit(_ask, r, password, transport, app, check) for r in repos]
        return [f.result() for f in futures]


def newest(states: list[RepositoryState], service: str) -> Snapshot | None:
    """The newest snapshot of ``service`` across the repositories that answered."""
    found = [s.newest[service] for s in states if s.ok and service in s.newest]
    return max(found, key=order) if found else None


def unreachable(states: list[RepositoryState]) -> list[RepositoryState]:
    return [s for s in states if not s.ok]
