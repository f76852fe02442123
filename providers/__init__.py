"""Hosting providers, one module each (installed as ``deplat.providers``).

A provider module is the only importer of its cloud SDK, and imports it lazily, inside the code
that builds a site, so that importing the module costs nothing. Each module exposes:

- ``validate_site(site, spec) -> list[(path, message)]``: its own option checks; ``path`` is
  relative to the site entry, e.g. ``("options", "instance_type")`` or ``("region",)``.
- (cloud providers) ``build_site(...)``: the Pulumi resources of one site; see ``deplat.stacks``.
- ``classify_error(text) -> ErrorClass``: suspended / forbidden / transient / fatal.

Adding a provider: one file here plus its tests, and its name in ``PROVIDERS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

PROVIDERS = ("aws", "gcp", "hcloud", "local")

OptionProblems = list[tuple[tuple[Any, ...], str]]


def get(name: str) -> ModuleType:
    """The provider module for ``name``; a ``KeyError`` names the valid ones."""
    if name not in PROVIDERS:
        raise KeyError(f"unknown provider '{name}'; known: {', '.join(PROVIDERS)}")
    return importlib.import_module(f"deplat.providers.{name}")


def option_problems(site: Site, spec: Spec) -> OptionProblems:
    module = get(site.provider.value)
    validate = getattr(module, "validate_site", None)
    return list(validate(site, spec)) if validate else []


def unknown_option_problems(site: Site, known: tuple[str, ...]) -> OptionProblems:
    """One problem per key of ``site.options`` that the provider does not know, listing the known ones."""
    import difflib

    problems: OptionProblems = []
    for key in site.options:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                (
                    ("options", key),
                    f"unknown option '{key}' for {site.provider.value} sites{hint}; "
                    f"known: {', '.join(known)}",
                )
            )
    return problems


def classify_with(table: list[tuple[str, str]], text: str, default: str = "fatal") -> str:
    """The class of the first ``(regex, class)`` row of ``table`` that matches ``text``
    (case-insensitive, first match wins, so put the most specific rows first)."""
    import re

    for pattern, kind in table:
        if re.search(pattern, text, re.IGNORECASE):
            return kind
    return default


def sdk_plugin(sdk: str) -> tuple[str, str]:
    """(plugin name, version) from an installed provider SDK's ``pulumi-plugin.json``, read
    without importing the SDK. Raises ``LookupError`` when the SDK is not installed."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec(sdk)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"the Python package {sdk} is not installed (pip install {sdk.replace('_', '-')})")
    meta = json.loads((Path(spec.submodule_search_locations[0]) / "pulumi-plugin.json").read_text())
    return str(meta["name"]), str(meta["version"])
