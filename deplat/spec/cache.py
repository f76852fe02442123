"""The validated spec, kept in ``.deplat/cache/`` so that a command run again on the same file skips
the YAML parser, validation and the building of pydantic's validators (most of a short command's
start-up: see ``benchmarks/dns_sync_vs_octodns.py``).

An entry is used only when its key matches: the SHA-256 of the spec file's bytes, deplat's
version, the code that validates (name, size and modification time of every module of
``deplat.spec``, ``deplat.providers`` and ``deplat.dns``: an edited or added provider is a new key)
and the home folder (``~`` in the spec's paths). The spec is stored as the JSON of its model
(``model_dump``) and rebuilt with ``model_construct`` along the model's own field types, without
validating again; an entry is written only when that rebuild is the validated spec exactly, value
and type (a value JSON cannot carry, such as a YAML date in ``options``, is simply not cached).

What it holds is what the spec file holds: names of secrets, never their values. It is written
only where ``.deplat/`` already exists (a project deplat has worked in: ``deplat validate`` in a
fresh checkout writes nothing), owner-only like everything there, and read only when it is the
user's own, owner-only file. Any problem reading it is a miss: the spec is then read as always.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import types
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from deplat import __version__
from deplat.errors import FilesystemError
from deplat.files import write_bytes_atomic
from deplat.spec.model import Spec

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
    import importlib

    entries = []
    for package in _CODE:
        for folder in importlib.import_module(package).__path__:
            with os.scandir(folder) as found:
                for entry in found:
                    if entry.name.endswith(".py"):
                        info = entry.stat()
                        entries.append(f"{entry.path}:{info.st_size}:{info.st_mtime_ns}")
    return "\n".join(sorted(entries))


def load(spec_file: Path, raw: bytes) -> Spec | None:
    """The spec cached for these bytes of ``spec_file``, or None (a miss)."""
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
        spec = rebuild(Spec, entry["spec"])
        return spec if isinstance(spec, Spec) else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # damaged or from another version of the model: read the spec as always
    finally:
        os.close(fd)


def save(spec_file: Path, raw: bytes, spec: Spec) -> None:
    """Keep ``spec`` (just validated from ``raw``) for the next command, if it can be kept exactly."""
    path = cache_file(spec_file)
    if not path.parent.parent.is_dir():  # no .deplat here: deplat has not worked in this folder
        return
    data = spec.model_dump(mode="json")
    if not same(rebuild(Spec, json.loads(json.dumps(data))), spec):
        return
    try:
        write_bytes_atomic(path, json.dumps({"key": key(raw), "spec": data}).encode(), durable=False)
    except (OSError, FilesystemError):  # a read-only or full disk: no cache, nothing else changes
        return


def rebuild(annotation: Any, value: Any) -> Any:
    """``value`` (JSON) as the type ``annotation`` of a spec field, models built without validation."""
    if value is None:
        return None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return rebuild(args[0], value)
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"cannot rebuild a value of {annotation}")
        return rebuild(kinds[0], value)
    if origin is list:
        return [rebuild(args[0], item) for item in value]
    if origin is dict:
        return {rebuild(args[0], k): rebuild(args[1], v) for k, v in value.items()}
    if origin is Literal or annotation is Any:
        return value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        unknown = set(value) - set(fields)
        if unknown:
            raise KeyError(f"{annotation.__name__} has no field {sorted(unknown)[0]}")
        return annotation.model_construct(
            **{
                name: rebuild(field.annotation, value[name])
                for name, field in fields.items()
                if name in value
            }
        )
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation(value)
    if annotation in (str, int, float, bool):
        if type(value) is not annotation and not (annotation is float and type(value) is int):
            raise TypeError(f"{value!r} is not a {annotation.__name__}")
        return annotation(value)
    raise TypeError(f"cannot rebuild a value of {annotation}")


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type, all the way down (``1 == 1.0`` and ``Role.primary == "primary"``
    are not the same here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        return a.__pydantic_private__ == b.__pydantic_private__ and all(
            same(getattr(a, name), getattr(b, name)) for name in type(a).model_fields
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return (
            list(a) == list(b)
            and all(same(k, j) for k, j in zip(a, b, strict=True))
            and all(same(a[k], b[k]) for k in a)
        )
    return bool(a == b)
