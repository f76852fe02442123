"""Where deplat keeps its files: ``.deplat/`` beside the spec file.

.deplat/state/            the embedded Pulumi file backend (unless state.backend says otherwise)
.deplat/local/<site>/     a local site: its state file, logs, and each service's data dir
.deplat/active.json       which site serves now and which are fenced (``deplat.state``)
.deplat/journal/          failover journals
.deplat/archive/          exported state of forgotten sites
"""

from __future__ import annotations

from pathlib import Path

from deplat.spec.model import Spec


def home(spec: Spec) -> Path:
    return spec.base_dir / ".deplat"


def state_backend_url(spec: Spec) -> str:
    """A Pulumi backend URL: ``file://ABS`` for a directory, else the configured URL as is."""
    backend = spec.state.backend
    if "://" in backend:
        return backend
    path = Path(backend)
    if not path.is_absolute():
        path = spec.base_dir / path
    return f"file://{path.resolve()}"


def local_site_dir(spec: Spec, site: str) -> Path:
    return home(spec) / "local" / site
