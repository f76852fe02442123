"""The traffic switch: the app's records on every configured DNS provider.

Each DNS provider kind (``rfc2136``, ``route53``, ``clouddns``, ``hcloud``) is one module in this
package exposing ``validate_options(provider, spec) -> list[(path, message)]`` (paths relative to
the ``dns[i]`` entry) and a ``Backend`` (``deplat.dns.base.DnsBackend``): ``read`` what the provider
serves now, ``write`` changes with compare-and-swap. ``deplat.dns.switch`` runs them on every
provider at once: ``read_all``, ``switch_all``, ``sync_all``, ``ttl_all``.

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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.spec.model import DnsProvider, Spec

KINDS = ("rfc2136", "route53", "clouddns", "hcloud")


def option_problems(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    """The provider kind's own option checks (its module's ``validate_options``)."""
    try:
        module = importlib.import_module(f"deplat.dns.{provider.provider.value}")
    except ModuleNotFoundError:
        return []
    validate = getattr(module, "validate_options", None)
    return list(validate(provider, spec)) if validate else []
