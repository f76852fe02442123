"""The file of one cached spec in ``.deplat/cache/``: its key, and reading and writing it safely.
Imports nothing of the spec model (``deplat.spec.cache`` turns an entry into a ``Spec``;
``deplat dns sync`` reads its own part without one: ``deplat.dns.sync_inputs``).

An entry is used only when its key matches: the SHA-256 of the spec file's bytes, deplat's
version, the code that validates (name, size and modification time of every module of
``deplat.spec``, ``deplat.providers`` and ``deplat.dns``: an edited or added provider is a new key)
and the home folder (``~`` in the spec's paths). It is written only where ``.deplat/`` already
exists (a project deplat has worked in), owner-only like everything there, and read only when it is
the user's own, owner-only file. Any problem reading it is a miss.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import stat
from pathlib import Path
from typing import Any

from deplat import __version__
from deplat.errors import FilesystemError
from deplat.files import write_bytes_atomic

# Packages whose modules decide what a valid spec is.
_CODE = ("deplat.spec", "deplat.providers", "deplat.dns")
# An entry is a few kilobytes: anything much larger is not ours.
_MAX_BYTES = 4 * 1024 * 1024


def cache_file(spec_file: Path) -> Path:
    """Where the entry of ``spec_file`` is kept (``deplat.paths``): one per spec file, replaced when
    the file changes."""
    from deplat.paths import spec_cache_file

    return spec_cache_file(spec_file)


def key(raw: bytes) -> str:
    digest = hashlib.sha256()
    for part in (__version__, os.path.expanduser("~"), _code_fingerprint()):
        digest.update(part.encode() + b"\0")
    digest.update(raw)
    return digest.hexdigest()


@functools.cache
def _code_fingerprint() -> str:
    entries = []
    for package in _CODE:
        found = importlib.util.find_spec(package)  # the folder, without importing the package
        for folder in (found.submodule_search_locations or []) if found else []:
            with os.scandir(folder) as listing:
                for entry in listing:
                    if entry.name.endswith(".py"):
                        info = entry.stat()
                        entries.append(f"{entry.path}:{info.st_size}:{info.st_mtime_ns}")
    return "\n".join(sorted(entries))


def read(spec_file: Path, raw: bytes) -> dict[str, Any] | None:
    """The entry cached for these bytes of ``spec_file``, or None (a miss)."""
    path = cache_file(spec_file)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        mine = info.st_uid == os.getuid() and not info.st_mode & 0o077
        if not (stat.S_ISREG(info.st_mode) and mine and info.st_size <= _MAX_BYTES):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            entry = json.loads(f.read())
        if not isinstance(entry, dict) or entry.get("key") != key(raw):
            return None
        return entry
    except (OSError, ValueError):
        return None  # damaged: read the spec as always
    finally:
        os.close(fd)


def wanted(spec_file: Path) -> bool:
    """Whether an entry is kept for ``spec_file``: only where deplat has worked (``.deplat/``)."""
    return cache_file(spec_file).parent.parent.is_dir()


def write(spec_file: Path, raw: bytes, parts: dict[str, Any]) -> None:
    """Keep ``parts`` (JSON) for these bytes of ``spec_file``, where deplat has worked before."""
    if not wanted(spec_file):
        return
    path = cache_file(spec_file)
    try:
        write_bytes_atomic(path, json.dumps({"key": key(raw), **parts}).encode(), durable=False)
    except (OSError, FilesystemError):  # a read-only or full disk: no cache, nothing else changes
        return
