"""The validated spec, kept in ``.deplat/cache/`` (``deplat.spec.cache_entry``: the file, its key,
who may read it) so that a command run again on the same file skips the YAML parser, validation and
the building of pydantic's validators (most of a short command's start-up: see
``benchmarks/dns_sync_vs_octodns.py``).

The spec is stored as the JSON of its model (``model_dump``) and rebuilt with ``model_construct``
along the model's own field types, without validating again; an entry is written only when that
rebuild is the validated spec exactly, value and type (a value JSON cannot carry, such as a YAML
date in ``options``, is simply not cached). Beside it, what ``deplat dns sync`` needs
(``deplat.dns.sync_inputs``), so that command runs without the model at all.

What it holds is what the spec file holds: names of secrets, never their values.
"""

from __future__ import annotations

import json
import types
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from deplat.spec import cache_entry
from deplat.spec.model import Spec


def load(spec_file: Path, raw: bytes) -> Spec | None:
    """The spec cached for these bytes of ``spec_file``, or None (a miss)."""
    entry = cache_entry.read(spec_file, raw)
    if entry is None:
        return None
    try:
        spec = rebuild(Spec, entry["spec"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # from another version of the model: read the spec as always
    return spec if isinstance(spec, Spec) else None


def save(spec_file: Path, raw: bytes, spec: Spec) -> None:
    """Keep ``spec`` (just validated from ``raw``, its source set) for the next command, if it can
    be kept exactly."""
    from deplat.dns.sync_inputs import SyncInputs

    if not cache_entry.wanted(spec_file):
        return
    data = spec.model_dump(mode="json")
    rebuilt = rebuild(Spec, json.loads(json.dumps(data)))
    rebuilt._source = spec._source
    if not same(rebuilt, spec):
        return
    try:
        dns_sync: dict[str, Any] | None = SyncInputs.of(spec).to_dict()
    except Exception:  # only a shortcut: without it, dns sync runs the full way
        dns_sync = None
    cache_entry.write(spec_file, raw, {"spec": data, "dns_sync": dns_sync})


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
