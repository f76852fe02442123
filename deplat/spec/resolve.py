"""The resolved spec: every default filled in, derived facts added, secrets shown only masked.

What ``deplat show`` prints. Secret values are never included: only whether each is set. Every file
path the spec names is listed resolved under ``paths``, those outside the spec's folder marked.
"""

from __future__ import annotations

from typing import Any

from deplat.providers import provider_of
from deplat.secrets import MASK, SecretStore, secret_names
from deplat.spec import filepaths
from deplat.spec.model import Spec


def resolved(spec: Spec, store: SecretStore | None = None) -> dict[str, Any]:
    store = store or SecretStore(spec)
    doc = spec.model_dump(mode="json")
    for site, out in zip(spec.sites, doc["sites"], strict=True):
        where = provider_of(site).address(site, spec)
        if where is not None:
            out["address"] = where
    doc["primary"] = spec.primary.name
    doc["secrets"] = {
        name: (f"{MASK} (set)" if store.get(name) else "(not set)") for name in secret_names(spec)
    }
    if spec.source:
        doc["source"] = str(spec.source)
    doc["paths"] = filepaths.resolved(spec)
    return doc
