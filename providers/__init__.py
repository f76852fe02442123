"""Hosting providers, one module each (installed as ``deplat.providers``), behind one contract.

Every module in this package (except ``base``) defines a ``deplat.providers.base.HostingProvider``
subclass and exposes one instance of it as ``provider``. The registry finds them by walking the
package's ``__path__`` (``pkgutil``); the spec's ``Provider`` enum, ``PROVIDERS`` and the JSON
Schema's per-provider ``options`` all derive from it. A module imports its cloud SDK lazily, inside
``build_site`` or ``control_plane_check``, so that importing it costs nothing.

Using a provider::

    from deplat.providers import provider_of, get, names

    provider = provider_of(site)                 # the site's HostingProvider
    if provider.capabilities.runs_locally: ...   # never ``site.provider == "local"``
    provider.classify_error(text)                # an ErrorClass
    provider.check_credentials(site, secrets)    # (ok, reason), no network
    provider.control_plane_check(site, spec, secrets, timeout)  # (ok, reason, ErrorClass | None)
    get("aws")                                   # by name; KeyError listing the valid names
    names()                                      # ("aws", "gcp", "hcloud", "local")

Capabilities (``provider.capabilities``): ``runs_locally`` (processes on loopback under deplat's
supervisor; no account, no Pulumi), ``pulumi_program`` (sites are Pulumi stacks built by
``build_site``), ``has_vm`` (a VM booted with the bootstrap), ``object_storage`` (a backup bucket).
A site's driver (up, destroy, status, restart, archive state...) comes from
``deplat.sites.driver_for(spec, site, secrets)``, chosen by these capabilities.

Adding a provider: one module here plus its tests, nothing else. See ``base`` for the hooks.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from deplat.providers.base import (
    Capabilities,
    ErrorRow,
    HostingProvider,
    OptionProblems,
    classify_with,
    sdk_plugin,
    unknown_option_problems,
)

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

__all__ = [
    "Capabilities",
    "ErrorRow",
    "HostingProvider",
    "OptionProblems",
    "classify_with",
    "get",
    "names",
    "option_problems",
    "provider_of",
    "registry",
    "sdk_plugin",
    "unknown_option_problems",
]

_NOT_PROVIDERS = frozenset({"base"})


@functools.cache
def names() -> tuple[str, ...]:
    """Every provider's name, sorted: its module's, listed from this package's ``__path__`` without
    importing any (a spec names one or two; the others are imported only when asked for)."""
    found = (info.name for info in pkgutil.iter_modules(__path__))
    return tuple(sorted(n for n in found if not n.startswith("_") and n not in _NOT_PROVIDERS))


def registry() -> dict[str, HostingProvider]:
    """Every provider found in this package's ``__path__``, by name, sorted (imports them all)."""
    return {name: get(name) for name in names()}


@functools.cache
def get(name: str) -> HostingProvider:
    """The provider called ``name``, its module imported on first use; a ``KeyError`` names the
    valid ones."""
    if str(name) not in names():
        raise KeyError(f"unknown provider '{name}'; known: {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    provider = getattr(module, "provider", None)
    if not isinstance(provider, HostingProvider):
        raise TypeError(f"{module.__name__} exposes no `provider` (a HostingProvider instance)")
    if provider.name != str(name):
        raise TypeError(f"{module.__name__}: provider.name is '{provider.name}', not '{name}'")
    return provider


def provider_of(site: Site) -> HostingProvider:
    """The provider of ``site``."""
    return get(site.provider.value)


def option_problems(site: Site, spec: Spec) -> OptionProblems:
    return provider_of(site).validate_site(site, spec)


def __getattr__(attr: str) -> Any:
    if attr == "PROVIDERS":  # computed on first use: discovery imports every provider module
        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
