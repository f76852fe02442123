"""The traffic switch: the app's DNS records on every configured DNS provider.

Each DNS provider kind (``rfc2136``, ``route53``, ``clouddns``, ``hcloud``) is one module in this
package exposing ``validate_options(provider, spec) -> list[(path, message)]`` (paths relative to
the ``dns[i]`` entry) and a ``DnsBackend`` implementation.
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
