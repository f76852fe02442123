"""The app spec: ``deplat.yaml`` as a typed model, loaded with every problem located.

The names below are imported when first used, so that a module of this package that needs no
model (``deplat.spec.cache_entry``) can be imported without building it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.spec.loader import DEFAULT_FILE, load_spec, load_text
    from deplat.spec.model import (
        DnsProvider,
        Domain,
        FailoverPolicy,
        HealthCheck,
        Provider,
        Role,
        Service,
        Site,
        Spec,
    )

_LOADER = ("DEFAULT_FILE", "load_spec", "load_text")
_MODEL = (
    "DnsProvider", "Domain", "FailoverPolicy", "HealthCheck", "Provider", "Role", "Service", "Site", "Spec"
)  # fmt: skip

__all__ = [
    "DEFAULT_FILE",
    "DnsProvider",
    "Domain",
    "FailoverPolicy",
    "HealthCheck",
    "Provider",
    "Role",
    "Service",
    "Site",
    "Spec",
    "load_spec",
    "load_text",
]


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        return getattr(importlib.import_module("deplat.spec.loader"), name)
    if name in _MODEL:
        return getattr(importlib.import_module("deplat.spec.model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
