"""The traffic switch: the app's records on every configured DNS provider.

Each DNS provider kind (``rfc2136``, ``route53``, ``clouddns``, ``hcloud``) is one module in this
package exposing ``validate_options(provider, spec) -> list[(path, message)]`` (paths relative to
the ``dns[i]`` entry), optionally ``OPTIONS`` (the option names it knows, shown in the JSON Schema),
and a ``Backend`` (``deplat.dns.base.DnsBackend``) whose ``kind`` is the module's name: ``read``
what the provider serves now, ``write`` changes with compare-and-swap. ``deplat.dns.switch`` runs
them on every provider at once: ``read_all``, ``switch_all``, ``sync_all``, ``ttl_all``.

The registry (``registry()``, ``kinds()``, ``get(kind)``) finds the kinds by walking this package's
``__path__`` (``pkgutil``): a module is a kind when it exposes such a ``Backend``; the others
(``base``, ``switch``) are helpers. The spec's ``DnsProviderKind`` enum and the JSON
Schema's per-kind ``options`` derive from it. A kind imports its SDK lazily (inside ``Backend``), so
discovery costs nothing. Adding a DNS provider: one module here plus its tests, nothing else.

Why direct APIs and not a Pulumi stack per DNS provider:

- Compare-and-swap needs a read of the live records and a conditional write in one step. The
  providers' own APIs have exactly that (RFC 2136 prerequisites, a Route 53 change batch that
  DELETEs the exact old set and CREATEs the new one, Cloud DNS changes whose deletions must match);
  a Pulumi stack compares against its own state file, not against what the provider serves, and
  would silently overwrite a record someone else changed.
- Speed and independence: a switch is one or two HTTP/DNS round trips per provider (milliseconds),
  not a Pulumi engine run per provider (seconds, a state lock, a plugin download). Nothing here
  reads or locks any site's stack, so a suspended hosting provider, a locked stack or a lost
  state backend never blocks DNS.
- The records are a value that moves between sites; they are not infrastructure with a life
  cycle. The zones themselves (and delegation) are set up once, by hand or by any IaC tool.
- Hetzner's RRSet API has no conditional write, so there CAS is read-then-write (documented in
  ``deplat.dns.hcloud``); the other three refuse a stale write on the server.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.spec.model import DnsProvider, Spec

__all__ = ["get", "kinds", "option_problems", "options_of", "registry"]


def _is_kind(module: ModuleType, name: str) -> bool:
    """A module is a DNS provider kind when its ``Backend`` is a ``DnsBackend`` of that name."""
    from deplat.dns.base import DnsBackend

    backend = getattr(module, "Backend", None)
    if not (isinstance(backend, type) and issubclass(backend, DnsBackend)):
        return False
    if backend.kind != name:
        raise TypeError(f"{module.__name__}: Backend.kind is '{backend.kind}', not '{name}'")
    return True


@functools.cache
def registry() -> dict[str, ModuleType]:
    """Every DNS provider kind's module found in this package's ``__path__``, by kind, sorted."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if _is_kind(module, info.name):
            found[info.name] = module
    return dict(sorted(found.items()))


def kinds() -> tuple[str, ...]:
    return tuple(registry())


def get(kind: str) -> ModuleType:
    """The module of the DNS provider kind ``kind``; a ``KeyError`` names the valid ones."""
    try:
        return registry()[str(kind)]
    except KeyError:
        raise KeyError(f"unknown DNS provider kind '{kind}'; known: {', '.join(kinds())}") from None


def options_of(kind: str) -> tuple[str, ...] | None:
    """The option names the kind knows (its module's ``OPTIONS``), or None when it does not say."""
    options = getattr(get(kind), "OPTIONS", None)
    return tuple(options) if options is not None else None


def option_problems(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    """The provider kind's own option checks (its module's ``validate_options``)."""
    validate = getattr(get(provider.provider.value), "validate_options", None)
    return list(validate(provider, spec)) if validate else []


def __getattr__(attr: str) -> Any:
    if attr == "KINDS":  # computed on first use: discovery imports every kind's module
        return kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
