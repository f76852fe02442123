"""The spec's file paths: where each may point, checked when the spec loads, listed by `deplat show`.

A relative path is relative to the spec's folder and must stay inside it: ``../../etc/x`` is refused
(judged on the words, so a symlink the user made inside the folder is followed as they meant).
An absolute path (``/...`` or ``~/...``) is allowed: each field's description says why it makes
sense there. Never under ``/proc``, ``/sys`` or ``/dev`` (pseudo files, not files anyone keeps), and
a folder deplat writes into is never a system folder. ``deplat show`` lists every path resolved, marking
those outside the spec's folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deplat.spec.model import DnsProvider, Site, Spec
from deplat.spec.positions import PathT

# Pseudo file systems: what is there is the kernel's, never a user's file.
PSEUDO = ("/proc", "/sys", "/dev")
# Folders of the system itself: deplat never writes into them.
SYSTEM = (*PSEUDO, "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/var/lib")


@dataclass(frozen=True)
class PathField:
    """One path written in the spec."""

    where: PathT  # the field's place in the spec, e.g. ("backups", "store")
    value: str
    writes: bool  # does deplat write into it?


def fields(spec: Spec) -> list[PathField]:
    """Every file or folder path the spec names (object-storage and backend URLs are not paths)."""
    out: list[PathField] = []
    for name, svc in spec.services.items():
        if svc.local is not None and svc.local.cwd is not None:
            out.append(PathField(("services", name, "local", "cwd"), svc.local.cwd, False))
    if spec.secrets_file is not None:
        out.append(PathField(("secrets_file",), spec.secrets_file, False))
    if spec.state.passphrase.file is not None:
        out.append(PathField(("state", "passphrase", "file"), spec.state.passphrase.file, False))
    if "://" not in spec.state.backend:
        out.append(PathField(("state", "backend"), spec.state.backend, True))
    if "://" not in spec.backups.store:
        out.append(PathField(("backups", "store"), spec.backups.store, True))
    sections: list[tuple[str, Sequence[Site | DnsProvider]]] = [("sites", spec.sites), ("dns", spec.dns)]
    for section, items in sections:
        for i, item in enumerate(items):
            if item.credentials.file is not None:
                out.append(PathField((section, i, "credentials", "file"), item.credentials.file, False))
    return out


def resolve(spec: Spec, value: str) -> Path:
    """Where ``value`` points: ``~`` expanded, relative to the spec's folder, ``..`` folded (symlinks
    are not resolved: they are the user's)."""
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = spec.base_dir / path
    return Path(os.path.normpath(path))


def is_absolute(value: str) -> bool:
    return Path(os.path.expanduser(value)).is_absolute()


def _under(path: str, roots: tuple[str, ...]) -> str | None:
    return next((root for root in roots if path == root or path.startswith(root + "/")), None)


def problem(field: PathField) -> str | None:
    """What is wrong with one path field, or None."""
    value = field.value
    if "\0" in value:
        return "contains a NUL character"
    if not value.strip():
        return "is empty"
    if is_absolute(value):
        absolute = os.path.normpath(os.path.expanduser(value))
        pseudo = _under(absolute, PSEUDO)
        if pseudo:
            return f"'{value}' is under {pseudo}, which holds the kernel's pseudo files, not yours"
        system = _under(absolute, SYSTEM) if field.writes else None
        if system or (field.writes and absolute == "/"):
            return f"'{value}' is a system folder and deplat writes here; choose a folder of your own"
        return None
    relative = os.path.normpath(value)
    if relative == ".." or relative.startswith("../"):
        return (
            f"'{value}' leads outside the spec's folder; keep it inside "
            "(or an absolute path, which `deplat show` lists)"
        )
    return None


def problems(spec: Spec) -> list[tuple[PathT, str]]:
    return [(f.where, message) for f in fields(spec) if (message := problem(f)) is not None]


def resolved(spec: Spec) -> dict[str, str]:
    """``{"backups.store": "/abs/path", ...}`` for ``deplat show``; a path outside the spec's folder
    is marked so."""
    from deplat.spec.loader import format_path

    base = os.path.normpath(spec.base_dir.absolute())
    out: dict[str, str] = {}
    for f in fields(spec):
        path = str(resolve(spec, f.value))
        inside = path == base or path.startswith(base.rstrip("/") + "/")
        out[format_path(f.where)] = path if inside else f"{path} (outside the spec's folder)"
    return out
