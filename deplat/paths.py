"""Where deplat keeps its files: ``.deplat/`` beside the spec file. Every path under it is built
here and nowhere else (``ProjectPaths``); the folder and its files are owner-only.

.deplat/state/                  the embedded Pulumi file backend (unless state.backend says otherwise)
.deplat/pulumi/<site>/          a cloud site's Pulumi workspace (stack settings)
.deplat/local/<site>/           a local site: its state file, logs, and each service's data dir
.deplat/active.json             which site serves now and which are fenced (``deplat.state``)
.deplat/addresses.json          sites' addresses learnt while they answered (the switch's CAS)
.deplat/journal/                failover journals
.deplat/archive/                exported state of left (fenced) sites
.deplat/drills/                 drill reports
.deplat/watch.log               the watcher's log
.deplat/frontdoor.json          where the local front door sends traffic
.deplat/locks/                  operation locks (one operation at a time per spec)
.deplat/certs/                  the app's certificate and the ACME account key (sealed with the passphrase)
.deplat/ssh/                    the app's SSH key pair (private key encrypted with the state
                                passphrase) and the sites' recorded host keys (known_hosts)
.deplat/frontdoor/              the front door process: its pid file and log
.deplat/cache/                  the validated spec (``deplat.spec.cache``), one entry per spec file
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deplat.spec.model import Spec

FILE_SCHEME = "file://"


def spec_cache_file(spec_file: Path) -> Path:
    """``.deplat/cache/spec-<hash of the spec's path>.json`` beside the spec file (known before the
    spec is read, so not a ``ProjectPaths`` member): one entry per spec file."""
    resolved = spec_file.resolve()
    name = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    return resolved.parent / ".deplat" / "cache" / f"spec-{name}.json"


def backend_url(backend: str, base_dir: Path) -> str:
    """A Pulumi backend URL: ``file://ABS`` for a directory (relative to ``base_dir``), else as is."""
    if "://" in backend:
        return backend
    path = Path(backend)
    if not path.is_absolute():
        path = base_dir / path
    return f"{FILE_SCHEME}{path.resolve()}"


def file_backend_dir(url: str) -> Path | None:
    """The directory of a ``file://`` backend URL; None for any other backend."""
    return Path(url[len(FILE_SCHEME) :]) if url.startswith(FILE_SCHEME) else None


@dataclass(frozen=True)
class ProjectPaths:
    """Every file and folder deplat keeps for one spec."""

    home: Path
    state_backend_url: str

    @classmethod
    def of(cls, spec: Spec) -> ProjectPaths:
        return cls(spec.base_dir / ".deplat", backend_url(spec.state.backend, spec.base_dir))

    @property
    def state_backend_dir(self) -> Path | None:
        """The embedded file backend's folder; None for a remote backend."""
        return file_backend_dir(self.state_backend_url)

    def pulumi_workspace(self, site: str) -> Path:
        return self.home / "pulumi" / site

    def local_site(self, site: str) -> Path:
        return self.home / "local" / site

    @property
    def local_sites(self) -> Path:
        return self.home / "local"

    @property
    def active(self) -> Path:
        return self.home / "active.json"

    @property
    def active_lock(self) -> Path:
        return self.home / "active.lock"

    @property
    def address_book(self) -> Path:
        return self.home / "addresses.json"

    @property
    def journals(self) -> Path:
        return self.home / "journal"

    def archive(self, site: str, tag: str) -> Path:
        return self.home / "archive" / f"{site}-{tag}"

    @property
    def drills(self) -> Path:
        return self.home / "drills"

    @property
    def watch_log(self) -> Path:
        return self.home / "watch.log"

    @property
    def front_door(self) -> Path:
        return self.home / "frontdoor.json"

    @property
    def front_door_lock(self) -> Path:
        return self.home / "frontdoor.lock"

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    @property
    def ssh(self) -> Path:
        return self.home / "ssh"

    @property
    def ssh_private_key(self) -> Path:
        """The app's SSH private key, PKCS#8 encrypted with the state passphrase (never plain)."""
        return self.ssh / "app_key.enc.pem"

    @property
    def ssh_public_key(self) -> Path:
        return self.ssh / "app_key.pub"

    @property
    def known_hosts(self) -> Path:
        """Sites' SSH host keys, recorded on first contact (or pinned from the site's outputs)."""
        return self.ssh / "known_hosts"

    @property
    def front_door_process(self) -> Path:
        return self.home / "frontdoor"

    def lock(self, name: str) -> Path:
        """A named lock file, e.g. ``lock("operation")``."""
        return self.home / "locks" / f"{name}.lock"

    def lock_holders(self, name: str) -> Path:
        """Who holds the lock ``name``: one JSON file per holder (pid, command) in this folder."""
        return self.home / "locks" / f"{name}.holders"


def paths(spec: Spec) -> ProjectPaths:
    return ProjectPaths.of(spec)


# Short forms kept for callers that need one path.
def home(spec: Spec) -> Path:
    return paths(spec).home


def state_backend_url(spec: Spec) -> str:
    return paths(spec).state_backend_url


def local_site_dir(spec: Spec, site: str) -> Path:
    return paths(spec).local_site(site)
