"""restic, driven through its CLI and its ``--json`` output, on any site through a ``Transport``.

A ``Repository`` says where (the ``-r`` URL, free of secrets) and how to get in (credentials as
environment values, never argv). ``Restic`` runs the commands: on the operator's machine (listing,
checking), on a local site's machine, or on a cloud site over SSH; the commands are the same.

Layout in a repository: one snapshot per backup of one service's data folder, taken from inside
that folder (``restic backup .``), so a restore writes the files at the top of its target. Each
snapshot's host is the site it came from, and it is tagged ``app=NAME``, ``service=NAME`` and
``seq=N``. restic's snapshot ``time`` is when the backup STARTED, so an age computed from it is an
upper bound of the data lost.

Which snapshot is newest is decided by ``seq``, never by ``time`` alone: ``time`` comes from the
clock of the host that took it, and after a clock jump (+2 h, then corrected) a STALE snapshot is
dated after the fresh ones. ``seq`` is one more than the highest ``seq`` of the app's service among
the snapshots the taker can read, in every repository that answers and from every site, so a site
promoted by a failover continues the sequence of the old primary and its backups win. The order of
snapshots (``order``) is ``seq``, then ``time`` (between equal ``seq``: two sites that backed up at
once), then ``id``; a snapshot without ``seq`` (taken by an older deplat) comes before any with one.
Retention follows the same order (``forget`` names the snapshots to drop; restic's ``--keep-last``
would keep the future-dated ones). The bootstrap's scripts (``stacks/site_backups.py``) do the same
in shell.
"""

from __future__ import annotations

import json
import re
import secrets as _random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from deplat.errors import ErrorClass, InputError, OperationFailed
from deplat.transport.base import Completed, Transport

RESTIC = "restic"
EMPTY_MARKER = ".deplat-empty"
SEQ = "seq"  # the tag holding a snapshot's place in its service's sequence


@dataclass(frozen=True)
class Repository:
    """A restic repository, resolved: its URL and its credentials (kept out of repr)."""

    name: str
    url: str
    held_by: str  # the provider (or operator) holding it: aws, gcp, hcloud, local, ...
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    deadline: float = 20.0


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: float  # when the backup started (epoch seconds)
    site: str  # restic's hostname: the site whose data this is
    tags: tuple[str, ...]
    repository: str = ""

    def tag(self, key: str) -> str | None:
        prefix = f"{key}="
        return next((t[len(prefix) :] for t in self.tags if t.startswith(prefix)), None)

    @property
    def service(self) -> str | None:
        return self.tag("service")

    @property
    def seq(self) -> int | None:
        """Its place in its service's sequence (None: taken without one)."""
        value = self.tag(SEQ)
        return int(value) if value is not None and value.isdigit() else None

    def age(self, now: float) -> float:
        return max(0.0, now - self.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"service": self.service, "seq": self.seq}


def order(snap: Snapshot) -> tuple[int, float, str]:
    """The key that sorts snapshots oldest first whatever the clocks of the hosts that took them."""
    return (-1 if snap.seq is None else snap.seq, snap.time, snap.id)


def next_seq(snapshots: Iterable[Snapshot]) -> int:
    """The ``seq`` of the next backup of a service, given its snapshots (from every repository)."""
    return 1 + max((s.seq or 0 for s in snapshots), default=0)


@dataclass(frozen=True)
class BackupDone:
    snapshot: str  # id
    files: int
    bytes: int  # processed
    added: int  # new bytes stored in the repository (after dedup and compression)
    seconds: float


class ResticFailed(OperationFailed):
    """A restic command failed; ``error_class`` says what kind of failure it was."""

    def __init__(self, message: str, error_class: ErrorClass, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.error_class = error_class


# One table from restic's error text to deplat's error classes (the only text matching here).
_CLASSES: list[tuple[re.Pattern[str], ErrorClass]] = [
    (re.compile(r"wrong password|no key found", re.I), ErrorClass.INPUT),
    (re.compile(r"suspend", re.I), ErrorClass.SUSPENDED),
    (
        re.compile(r"access ?denied|forbidden|InvalidAccessKeyId|SignatureDoesNotMatch|\b403\b", re.I),
        ErrorClass.FORBIDDEN,
    ),
    (re.compile(r"no space left|read-only file system|permission denied", re.I), ErrorClass.FILESYSTEM),
    (
        re.compile(
            r"connection refused|no such host|i/o timeout|timeout|connection reset|dial tcp|"
            r"already locked|unexpected EOF|\b50[0-9]\b|temporar",
            re.I,
        ),
        ErrorClass.TRANSIENT,
    ),
]
_NO_REPOSITORY = re.compile(r"Is there a repository at the following location|config file does not exist")


def _absent(stderr: str) -> bool:
    """restic reached the storage and found no repository there (it says "Is there a repository"
    after a refused connection too: only a FATAL-class answer means absent)."""
    return bool(_NO_REPOSITORY.search(stderr)) and classify(stderr) is ErrorClass.FATAL


def classify(stderr: str) -> ErrorClass:
    for pattern, error_class in _CLASSES:
        if pattern.search(stderr):
            return error_class
    return ErrorClass.FATAL


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal:")]
    return (fatal or lines or ["(no message)"])[-1]


def _epoch(text: str) -> float:
    """restic's RFC 3339 time with nanoseconds (``2026-12-01T04:23:42.752484533Z``)."""
    text = text.strip()
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"not a restic time: {text!r}")
    base, frac, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(frac) if frac else 0.0)


def parse_snapshots(text: str, repository: str = "") -> list[Snapshot]:
    """``restic snapshots --json`` -> snapshots, oldest first (``order``)."""
    items = json.loads(text or "[]") or []
    found = [
        Snapshot(
            id=item["id"],
            short_id=item.get("short_id", item["id"][:8]),
            time=_epoch(item["time"]),
            site=item.get("hostname", ""),
            tags=tuple(item.get("tags") or ()),
            repository=repository,
        )
        for item in items
    ]
    return sorted(found, key=order)


def newest_per_service(snapshots: Iterable[Snapshot]) -> dict[str, Snapshot]:
    newest: dict[str, Snapshot] = {}
    for snap in snapshots:
        service = snap.service
        if service is not None and (service not in newest or order(snap) >= order(newest[service])):
            newest[service] = snap
    return newest


# --- argument lists (pure; tested as exact lists) -------------------------------------------------


def tags(app: str, service: str | None = None) -> list[str]:
    return [f"app={app}"] + ([f"service={service}"] if service else [])


def backup_args(repo: Repository, *, site: str, app: str, service: str, seq: int) -> list[str]:
    args = [RESTIC, "-r", repo.url, "backup", "--json", "--host", site]
    for tag in [*tags(app, service), f"{SEQ}={seq}"]:
        args += ["--tag", tag]
    return [*args, "."]


def snapshots_args(
    repo: Repository, *, app: str | None = None, service: str | None = None, tag: str | None = None
) -> list[str]:
    args = [RESTIC, "-r", repo.url, "snapshots", "--json", "--no-lock"]
    if app:
        args += ["--tag", ",".join([*tags(app, service), *([tag] if tag else [])])]
    return args


def restore_args(repo: Repository, snapshot: str, target: str) -> list[str]:
    return [RESTIC, "-r", repo.url, "restore", snapshot, "--target", target]


def forget_args(repo: Repository, snapshots: Sequence[str]) -> list[str]:
    """Drop the named snapshots (chosen by ``order``, not by restic's time-based policies)."""
    return [RESTIC, "-r", repo.url, "forget", "--prune", *snapshots]


def to_forget(snapshots: Iterable[Snapshot], keep: int) -> list[Snapshot]:
    """All but the newest ``keep`` snapshots (``order``) of each site and service."""
    groups: dict[tuple[str, str | None], list[Snapshot]] = {}
    for snap in snapshots:
        groups.setdefault((snap.site, snap.service), []).append(snap)
    keep = max(1, keep)
    return [s for group in groups.values() for s in sorted(group, key=order)[:-keep]]


def check_args(repo: Repository) -> list[str]:
    return [RESTIC, "-r", repo.url, "check"]


def swap_script(incoming: str, target: str) -> str:
    """Put the restored folder ``incoming`` in the place of ``target``: old aside, new in, old
    removed. A crash between the two renames leaves ``TARGET.old-*`` and no target: restoring
    again repairs it."""
    q_in, q_target = _q(incoming), _q(target)
    aside = _q(f"{target}.old-{incoming.rsplit('-', 1)[-1]}")
    return (
        "set -e\n"
        f"sync -f {q_in} 2>/dev/null || sync\n"
        f"if [ -e {q_target} ]; then mv -f -- {q_target} {aside}; fi\n"
        f"mv -f -- {q_in} {q_target}\n"
        f"rm -rf -- {aside}\n"
    )


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --- running --------------------------------------------------------------------------------------


class Restic:
    """restic commands against one repository, run through ``transport``."""

    def __init__(self, repo: Repository, password: str, transport: Transport) -> None:
        self.repo = repo
        self.transport = transport
        self._env = {**repo.env, "RESTIC_PASSWORD": password}

    def _run(
        self,
        args: Sequence[str],
        *,
        cwd: str | None = None,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> Completed:
        return self.transport.run(
            args, env=self._env, cwd=cwd, timeout=timeout or self.repo.deadline, stdin=stdin
        )

    def _fail(self, what: str, done: Completed) -> ResticFailed:
        if _absent(done.stderr):
            return ResticFailed(
                f"repository {self.repo.name}: {what} failed: there is no restic repository at "
                f"{self.repo.url} yet (no backup was ever written there)",
                ErrorClass.FATAL,
                hint="the first backup creates it; check the bucket and prefix if one was made",
            )
        error_class = classify(done.stderr)
        hint = None
        if error_class is ErrorClass.INPUT:
            hint = "the restic password does not open this repository: check the backups.password secret"
        elif error_class is ErrorClass.FORBIDDEN:
            hint = "the storage refused the credentials: check the repository's access_key/secret_key"
        return ResticFailed(
            f"repository {self.repo.name}: {what} failed: {_last_error(done.stderr)}", error_class, hint=hint
        )

    def exists(self) -> bool:
        done = self._run([RESTIC, "-r", self.repo.url, "cat", "config", "--no-lock"])
        if done.ok:
            return True
        if _absent(done.stderr):
            return False
        raise self._fail("opening", done)

    def init(self) -> bool:
        """Create the repository unless it exists; True when it was created now."""
        if self.exists():
            return False
        done = self._run([RESTIC, "-r", self.repo.url, "init"])
        if done.ok:
            return True
        if re.search(r"already exists|already initialized", done.stderr):
            return False  # someone else made it meanwhile
        raise self._fail("init", done)

    def backup(
        self,
        path: str,
        *,
        site: str,
        app: str,
        service: str,
        timeout: float | None = None,
        empty: bool = False,
        seq: int | None = None,
    ) -> BackupDone:
        """Back up the folder ``path`` on the transport's machine as one snapshot. ``empty``: the
        folder holds nothing, and the snapshot says so (one empty marker file, dropped on restore;
        direct transport only, as the marker comes on stdin). ``seq``: its place in the service's
        sequence, from every repository (``next_seq``); by default, from this repository."""
        if seq is None:
            seq = next_seq(self.snapshots(app=app, service=service))
        args = backup_args(self.repo, site=site, app=app, service=service, seq=seq)
        stdin = None
        if empty:  # restic refuses an empty snapshot: store one empty marker file instead
            args = [*args[:-1], "--stdin", "--stdin-filename", EMPTY_MARKER]
            stdin = b"this folder was empty\n"  # restic 0.14 refuses a 0-byte stdin
        done = self._run(args, cwd=path, timeout=timeout, stdin=stdin)
        if not done.ok:
            raise self._fail(f"backup of {service}", done)
        for line in reversed(done.stdout.splitlines()):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("message_type") == "summary":
                return BackupDone(
                    snapshot=item["snapshot_id"],
                    files=int(item.get("total_files_processed", 0)),
                    bytes=int(item.get("total_bytes_processed", 0)),
                    added=int(item.get("data_added", 0)),
                    seconds=float(item.get("total_duration", 0.0)),
                )
        raise ResticFailed(f"repository {self.repo.name}: backup printed no summary", ErrorClass.FATAL)

    def snapshots(
        self, *, app: str | None = None, service: str | None = None, tag: str | None = None
    ) -> list[Snapshot]:
        done = self._run(snapshots_args(self.repo, app=app, service=service, tag=tag))
        if not done.ok:
            raise self._fail("listing snapshots", done)
        return parse_snapshots(done.stdout, self.repo.name)

    def note(self, *, site: str, app: str, tags: Sequence[str], filename: str, content: bytes) -> str:
        """A small snapshot of ``content`` alone (a marker such as the primary's lease); its id."""
        args = [RESTIC, "-r", self.repo.url, "backup", "--json", "--host", site, "--tag", f"app={app}"]
        for tag in tags:
            args += ["--tag", tag]
        done = self._run([*args, "--stdin", "--stdin-filename", filename], stdin=content)
        if not done.ok:
            raise self._fail(f"writing {filename}", done)
        summary = [ln for ln in done.stdout.splitlines() if '"summary"' in ln]
        return str(json.loads(summary[-1])["snapshot_id"]) if summary else ""

    def latest(self, *, app: str, service: str) -> Snapshot | None:
        found = self.snapshots(app=app, service=service)
        return found[-1] if found else None

    def restore(self, snapshot: str, target: str, *, timeout: float | None = None) -> None:
        """Replace the folder ``target`` with ``snapshot``'s files: restored beside it first, then
        swapped in by two renames, so a failed restore leaves the old data in place."""
        target = target.rstrip("/")
        parent, name = target.rsplit("/", 1) if "/" in target else (".", target)
        incoming = f"{parent}/.{name}.restore-{_random.token_hex(4)}"
        done = self._run(restore_args(self.repo, snapshot, incoming), timeout=timeout)
        if not done.ok:
            self.transport.run(["rm", "-rf", "--", incoming], timeout=60)
            raise self._fail(f"restore of {snapshot[:8]}", done)
        self.transport.run(["rm", "-f", "--", f"{incoming}/{EMPTY_MARKER}"], timeout=60)
        swapped = self.transport.run(["sh", "-c", swap_script(incoming, target)], timeout=120)
        if not swapped.ok:
            raise OperationFailed(
                f"on {self.transport.where}: cannot put the restored data in place: {swapped.describe()}"
            )

    def forget(self, *, app: str, keep: int, service: str | None = None, timeout: float | None = None) -> int:
        """Keep the newest ``keep`` snapshots (``order``) of each site and service; prune the rest.
        Returns the number of snapshots removed."""
        doomed = to_forget(self.snapshots(app=app, service=service), keep)
        if not doomed:
            return 0
        done = self._run(forget_args(self.repo, [s.id for s in doomed]), timeout=timeout)
        if not done.ok:
            raise self._fail("forget", done)
        return len(doomed)

    def check(self, *, timeout: float | None = None) -> None:
        done = self._run(check_args(self.repo), timeout=timeout)
        if not done.ok:
            raise self._fail("check", done)


def require_password(value: str | None, secret: str) -> str:
    if not value:
        raise InputError(
            f"the restic password secret {secret} is not set",
            hint=f"export {secret}=... (or add it to the secrets_file); "
            "losing it makes every backup unreadable, so keep a copy off every provider",
        )
    return value
