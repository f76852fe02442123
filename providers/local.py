"""The ``local`` provider: a site on this machine, for rehearsals and tests.

Each local site has its own loopback address (``options.address``, default ``127.0.0.<10+n>``),
so that several sites can run the same ports side by side and DNS can point at one of them.
Its sites run no Pulumi program: ``deplat.local`` supervises their processes.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deplat.errors import ErrorClass
from deplat.providers.base import (
    Capabilities,
    ControlPlane,
    ErrorRow,
    HostingProvider,
    OptionProblems,
    ProviderOptions,
)

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

NAME = "local"


class LocalOptions(ProviderOptions):
    address: str | None = Field(
        None, description="loopback address the site's services bind to (default 127.0.0.<10+n>)"
    )


# What a suspended local "provider" answers (``deplat.failover.faults``): (HTTP status or None, body regex)
SUSPENSION_SIGNATURES: tuple[tuple[int | None, str], ...] = ((403, r"AccountSuspended"),)

# Text of a local site's failures, first match wins: the same words a cloud provider module uses.
_WORDS = "deplat.failover.faults (the drill's fault injector) and deplat.local's own messages"
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(r"AccountSuspended|account (is )?suspended", ErrorClass.SUSPENDED, _WORDS),
    ErrorRow(
        r"AccessDenied|Forbidden|\b403\b|Permission denied|credentials refused", ErrorClass.FORBIDDEN, _WORDS
    ),
    ErrorRow(
        r"Connection refused|timed out|Timeout|temporarily|Address already in use|is busy"
        r"|did not answer|stopped answering|Resource temporarily unavailable",
        ErrorClass.TRANSIENT,
        "errno texts of ECONNREFUSED, ETIMEDOUT, EADDRINUSE, EAGAIN (Python's OSError.strerror)",
    ),
)


def is_local(site: Site) -> bool:
    return site.provider.value == NAME


def address(site: Site, spec: Spec) -> str:
    """The loopback address the site's services bind to."""
    explicit = site.options.get("address")
    if explicit:
        return str(explicit)
    return addresses(spec)[site.name]


def addresses(spec: Spec) -> dict[str, str]:
    """Every local site's address, in one pass (calling ``address`` for each site is quadratic)."""
    local = [s for s in spec.sites if is_local(s)]
    return {s.name: str(s.options.get("address") or f"127.0.0.{10 + n + 1}") for n, s in enumerate(local)}


def provider_state_path(spec: Spec, site: str) -> Path:
    """The local stand-in for a provider's control plane: ``.deplat/local/<site>/provider.json``.

    ``{"state": "active" | "suspended" | "forbidden" | "unavailable"}``; no file means active. Only
    the drill's fault injector (``deplat.failover.faults``) writes it.
    """
    from deplat.paths import local_site_dir

    return local_site_dir(spec, site) / "provider.json"


def site_problems(site: Site, spec: Spec) -> OptionProblems:
    """``options.address`` must be a loopback address."""
    problems: OptionProblems = []
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
    # Two local sites on one address: checked once for all sites by deplat.spec.rules (one pass;
    # a loop here, per site, made validation cubic in the number of local sites).
    return problems


def control_plane_check(
    site: Site, spec: Spec, secrets: SecretStore | None = None, timeout: float = 5.0
) -> ControlPlane:
    """Are this site's "credentials" still accepted? Reads the fault injector's file."""
    path = provider_state_path(spec, site.name)
    try:
        state = str(json.loads(path.read_text(encoding="utf-8")).get("state", "active"))
    except FileNotFoundError:
        state = "active"
    except (OSError, ValueError, AttributeError) as exc:
        return False, f"local control plane unreadable: {exc}", ErrorClass.TRANSIENT
    if state == "active":
        return True, "credentials accepted (local)", None
    if state == "suspended":
        return False, "account suspended (AccountSuspended)", ErrorClass.SUSPENDED
    if state == "forbidden":
        return False, "credentials refused (AccessDenied)", ErrorClass.FORBIDDEN
    return False, f"control plane unavailable (state {state})", ErrorClass.TRANSIENT


def plan_notes(site: Site, spec: Spec) -> tuple[dict[str, Any], list[str]]:
    """A local site's whole offline plan: its address and how many processes it runs."""
    count = sum(1 for svc in spec.services.values() if svc.local is not None)
    where = address(site, spec)
    return {"ipv4": [where]}, [f"runs {count} process{'es' * (count != 1)} on {where} (no Pulumi program)"]


class LocalProvider(HostingProvider):
    """A local site needs no account: ``check_credentials`` is the base's "no credentials needed"."""

    name = NAME
    title = "this machine (loopback)"
    capabilities = Capabilities(runs_locally=True, pulumi_program=False, has_vm=False, object_storage=False)
    Options = LocalOptions
    ERROR_TABLE = ERROR_TABLE
    SUSPENSION_SIGNATURES = SUSPENSION_SIGNATURES
    # the hooks are this module's functions (mypy checks each against HostingProvider's signature)
    site_problems = staticmethod(site_problems)
    address = staticmethod(address)
    control_plane_check = staticmethod(control_plane_check)
    plan_notes = staticmethod(plan_notes)


provider = LocalProvider()
classify_error = provider.classify_error
check_credentials = provider.check_credentials
