"""What every DNS provider kind implements, and the results the traffic switch returns.

A backend (one per ``dns:`` entry) does two things for the app's names:

- ``read(names, deadline)``: the A/AAAA records the provider serves now, asked of the provider's
  own authoritative server or API (never a resolver);
- ``write(changes, ttl, deadline)``: replace them. With ``Change.cas`` the write carries the
  values read just before as a server-side precondition wherever the provider has one (RFC 2136
  prerequisites, Route 53 DELETE-exact + CREATE, Cloud DNS deletions-must-match); a precondition
  that fails raises ``CasConflict``.

Failures raise ``DnsError`` with one of five classes, so the failover can decide what to do:

    suspended   the account is suspended or disabled: do not expect it back soon
    forbidden   the provider refuses this call (permissions, policy, REFUSED)
    auth        credentials are wrong or unknown (bad TSIG key, bad token)
    transient   timeouts, server down, SERVFAIL, throttling, 5xx: may work on a retry
    fatal       configuration is wrong (no such zone, server not authoritative): fix the spec
"""

from __future__ import annotations

import importlib
import ipaddress
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from deplat.dns.zone import AppZone, DnsEntry
    from deplat.secrets import SecretStore
    from deplat.sites import Addresses

ErrorClass = Literal["suspended", "forbidden", "auth", "transient", "fatal"]
ERROR_CLASSES: tuple[str, ...] = ("suspended", "forbidden", "auth", "transient", "fatal")
RECORD_TYPES = ("A", "AAAA")


class DnsError(Exception):
    """A provider could not do what was asked; ``error_class`` says how bad it is."""

    def __init__(self, message: str, error_class: ErrorClass = "fatal") -> None:
        super().__init__(message)
        self.message = message
        self.error_class: ErrorClass = error_class


class CasConflict(Exception):
    """The provider no longer serves what the write expected: nothing was written."""


class Deadline:
    """A point in time every request of one provider's operation must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def timeout(self, cap: float | None = None) -> float:
        """Seconds left for the next request (at least 10 ms), never more than ``cap``."""
        left = max(0.01, self.remaining())
        return min(left, cap) if cap else left

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise DnsError(f"no time left to {what} (deadline {self.seconds:g} s)", "transient")


def canonical_ip(value: str) -> str:
    """``2001:DB8::0001`` -> ``2001:db8::1``; anything that is not an IP stays as it is."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return value.strip()


def fqdn(name: str, zone: str) -> str:
    """An app name as a lower-case absolute name without the trailing dot.

    Names in the spec are absolute (``www.example.org``); a bare label inside the zone (``www``)
    and ``@`` (the apex) are accepted too.
    """
    name = name.strip().rstrip(".").lower()
    zone = zone.strip().rstrip(".").lower()
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    return f"{name}.{zone}"


@dataclass
class Served:
    """The A and AAAA records one provider serves for one name (sorted, canonical)."""

    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    ttl: int | None = None
    #: the TTL of each type as served (providers whose deletes must match exactly need it)
    ttls: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.ipv4 = sorted({canonical_ip(a) for a in self.ipv4})
        self.ipv6 = sorted({canonical_ip(a) for a in self.ipv6})

    @classmethod
    def of(cls, addresses: Addresses, ttl: int | None = None) -> Served:
        return cls(list(addresses.ipv4), list(addresses.ipv6), ttl)

    @property
    def empty(self) -> bool:
        return not self.ipv4 and not self.ipv6

    def values(self, rdtype: str) -> list[str]:
        return self.ipv4 if rdtype == "A" else self.ipv6

    def ttl_of(self, rdtype: str, default: int) -> int:
        return self.ttls.get(rdtype, self.ttl if self.ttl is not None else default)

    def same_addresses(self, other: Served) -> bool:
        return self.ipv4 == other.ipv4 and self.ipv6 == other.ipv6

    def to_dict(self) -> dict[str, Any]:
        return {"ipv4": list(self.ipv4), "ipv6": list(self.ipv6), "ttl": self.ttl}


@dataclass
class Change:
    """Replace what ``name`` serves (``current``, as just read) with ``new`` at the given TTL.

    ``cas``: only if the provider still serves ``current`` (a server-side precondition where the
    provider has one); otherwise the write overwrites whatever is there.
    """

    name: str
    current: Served
    new: Served
    cas: bool = True


class DnsBackend(ABC):
    """One configured DNS provider (a ``dns:`` entry of the spec) of the app's zone."""

    kind: ClassVar[str] = ""
    #: True when ``write`` enforces ``Change.cas`` on the server; False: read-then-write only.
    server_side_cas: ClassVar[bool] = False
    #: the pip extra (``deplat[<extra>]``) installing ``sdk_modules``, the SDKs this kind needs
    extra: ClassVar[str | None] = None
    sdk_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, provider: DnsEntry, app: AppZone, secrets: SecretStore) -> None:
        self.provider = provider
        self.app = app
        self.secrets = secrets
        self.options = dict(provider.options)
        self.zone = fqdn(app.zone, app.zone)
        #: what the last read returned (the switch reports it as the provider's "before")
        self.last_read: dict[str, Served] = {}

    @property
    def name(self) -> str:
        return self.provider.name

    @abstractmethod
    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        """What each of ``names`` (absolute, no trailing dot) serves now; raises ``DnsError``."""

    @abstractmethod
    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        """Apply ``changes`` (all or, where the provider allows, atomically); raises ``DnsError``
        or ``CasConflict``."""

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        """Serve exactly ``values`` as the TXT records of ``name`` (an ACME DNS-01 challenge),
        replacing whatever TXT records it had; raises ``DnsError``."""
        raise DnsError(f"DNS provider {self.name} ({self.kind}) cannot write TXT records", "fatal")

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        """Remove the TXT records of ``name`` (none there is fine); raises ``DnsError``."""
        raise DnsError(f"DNS provider {self.name} ({self.kind}) cannot delete TXT records", "fatal")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""


def backend_for(provider: DnsEntry, app: AppZone, secrets: SecretStore) -> DnsBackend:
    """The backend for one ``dns:`` entry (its kind's module is imported only now)."""
    module = importlib.import_module(f"deplat.dns.{provider.kind}")
    backend: DnsBackend = module.Backend(provider, app, secrets)
    return backend


# --- error classification shared by the HTTP-based providers -----------------------------------

_SUSPENDED_WORDS = ("suspend", "blocked", "accountdisabled", "account disabled", "billing", "closed")


def looks_suspended(text: str) -> bool:
    lowered = text.lower().replace("_", "")
    return any(word.replace("_", "") in lowered for word in _SUSPENDED_WORDS)


def classify_http(status: int, body: str) -> ErrorClass:
    """An HTTP error status (and its body) as an error class; 409/412 are conflicts, not here."""
    if status in (401, 407):
        return "auth"
    if status == 403:
        return "suspended" if looks_suspended(body) else "forbidden"
    if status in (408, 423, 425, 429) or status >= 500:
        return "transient"
    return "fatal"


def quote_txt(value: str) -> str:
    """A TXT value in zone-file form, the form every provider's API takes: ``"value"``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def option_float(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def check_known(
    options: dict[str, Any], known: tuple[str, ...], kind: str
) -> list[tuple[tuple[Any, ...], str]]:
    """Unknown option keys, each as a located problem."""
    return [
        (("options", key), f"unknown option '{key}' for a {kind} DNS provider; known: {', '.join(known)}")
        for key in options
        if key not in known
    ]


def check_timeout(options: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    if "timeout" not in options:
        return []
    value = options["timeout"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 120:
        return [(("options", "timeout"), "timeout must be a number of seconds, more than 0 and at most 120")]
    return []


def check_url(options: dict[str, Any], key: str) -> list[tuple[tuple[Any, ...], str]]:
    value = options.get(key)
    if value is None:
        return []
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return [(("options", key), f"{key} must be an http:// or https:// URL")]
    return []
