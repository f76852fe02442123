"""The ``local`` provider: a site on this machine, for rehearsals and tests.

Each local site has its own loopback address (``options.address``, default ``127.0.0.<10+n>``),
so that several sites can run the same ports side by side and DNS can point at one of them.
The supervisor that runs the services lives in ``deplat.local``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.spec.model import Provider

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

OPTIONS = ("address",)

# What a suspended local "provider" answers (``deplat.failover.faults``): (HTTP status or None, body regex)
SUSPENSION_SIGNATURES: list[tuple[int | None, str]] = [(403, r"AccountSuspended")]


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
        if (
            other.name != site.name
            and other.provider is Provider.local
            and address(other, spec) == mine
            and spec.sites.index(other) < spec.sites.index(site)
        ):
            problems.append(
                (("options", "address"), f"address {mine} is already used by site '{other.name}'")
            )
    return problems


def provider_state_path(spec: Spec, site: str) -> Path:
    """The local stand-in for a provider's control plane: ``.deplat/local/<site>/provider.json``.

    ``{"state": "active" | "suspended" | "forbidden" | "unavailable"}``; no file means active. Only
    the drill's fault injector (``deplat.failover.faults``) writes it.
    """
    from deplat.paths import local_site_dir

    return local_site_dir(spec, site) / "provider.json"


def control_plane_check(site: Site, spec: Spec) -> tuple[bool, str, str | None]:
    """Are this site's "credentials" still accepted? (ok, reason, error class)."""
    import json

    path = provider_state_path(spec, site.name)
    try:
        state = str(json.loads(path.read_text(encoding="utf-8")).get("state", "active"))
    except FileNotFoundError:
        state = "active"
    except (OSError, ValueError, AttributeError) as exc:
        return False, f"local control plane unreadable: {exc}", "transient"
    if state == "active":
        return True, "credentials accepted (local)", None
    if state == "suspended":
        return False, "account suspended (AccountSuspended)", "suspended"
    if state == "forbidden":
        return False, "credentials refused (AccessDenied)", "forbidden"
    return False, f"control plane unavailable (state {state})", "transient"


# Text of a local site's failures, first match wins: the same words a cloud provider module uses.
_ERROR_PATTERNS: list[tuple[str, str]] = [
    ("suspended", r"AccountSuspended|account (is )?suspended"),
    ("forbidden", r"AccessDenied|Forbidden|\b403\b|[Pp]ermission denied|credentials refused"),
    (
        "transient",
        r"[Cc]onnection refused|timed out|[Tt]imeout|temporarily|[Aa]ddress already in use|is busy"
        r"|did not answer|stopped answering|[Rr]esource temporarily unavailable",
    ),
]


def classify_error(text: str) -> str:
    """``suspended`` / ``forbidden`` / ``transient`` / ``fatal`` for an error seen on a local site."""
    import re

    for error_class, pattern in _ERROR_PATTERNS:
        if re.search(pattern, text):
            return error_class
    return "fatal"


def check_credentials(site: Site, secrets: object = None) -> tuple[bool, str]:
    """A local site needs no account: always ``(True, "no credentials needed")``."""
    return True, "no credentials needed"
