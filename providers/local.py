"""The ``local`` provider: a site on this machine, for rehearsals and tests.

Each local site has its own loopback address (``options.address``, default ``127.0.0.<10+n>``),
so that several sites can run the same ports side by side and DNS can point at one of them.
The supervisor that runs the services lives in ``deplat.local``.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from deplat.spec.model import Provider

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

OPTIONS = ("address",)


def address(site: Site, spec: Spec) -> str:
    """The loopback address the site's services bind to."""
    explicit = site.options.get("address")
    if explicit:
        return str(explicit)
    local = [s.name for s in spec.sites if s.provider is Provider.local]
    return f"127.0.0.{10 + local.index(site.name) + 1}"


def validate_site(site: Site, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    for key in site.options:
        if key not in OPTIONS:
            problems.append((("options", key), f"unknown option '{key}' for a local site; known: address"))
    raw = site.options.get("address")
    if raw is not None:
        try:
            ip = ipaddress.ip_address(str(raw))
        except ValueError:
            problems.append((("options", "address"), f"'{raw}' is not an IP address"))
        else:
            if not ip.is_loopback:
                problems.append(
                    (("options", "address"), f"'{raw}' is not a loopback address (127.0.0.0/8 or ::1)")
                )
    mine = address(site, spec)
    for other in spec.sites:
        if other.name != site.name and other.provider is Provider.local and address(other, spec) == mine:
            if spec.sites.index(other) < spec.sites.index(site):
                problems.append(
                    (("options", "address"), f"address {mine} is already used by site '{other.name}'")
                )
    return problems
