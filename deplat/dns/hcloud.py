"""``hcloud``: Hetzner DNS, part of the Hetzner Cloud API (zones and RRSets), through Hetzner's own
client (hcloud-python >= 2.8, ``deplat.hetzner``).

Calls (``client.zones``; https://api.hetzner.cloud/v1, bearer token):
    GET    /zones/{zone}/rrsets?name=RR&type=A&type=AAAA      read (RR is relative, ``@`` = apex)
    POST   /zones/{zone}/rrsets                               create {name, type, ttl, records}
    POST   /zones/{zone}/rrsets/{RR}/{TYPE}/actions/set_records   {records: [{value}]}
    POST   /zones/{zone}/rrsets/{RR}/{TYPE}/actions/change_ttl    {ttl}
    DELETE /zones/{zone}/rrsets/{RR}/{TYPE}

The API has no conditional write, so compare-and-swap here is read-then-write: the switch reads
right before writing and writes nothing when the values differ; only a write landing in the few
milliseconds between that read and the write can slip through. A create where the expected state
was "no records" does fail on the server if someone created them meanwhile (409
``uniqueness_error``).

Every write starts an asynchronous action; the backend waits for each to succeed (bounded by the
operation's deadline) before the next, so a switch is never reported done while Hetzner still
applies it. An action still running at the deadline is a ``transient`` failure ("may still land");
one that fails is classified by its error code. API errors are classified from the client's
``APIException.code`` through ``deplat.hetzner.ERROR_TABLE`` (``unauthorized`` is ``auth`` here).

Options: ``zone`` (the zone's name or id; default the spec's domain.zone), ``endpoint`` (tests),
``timeout`` (default 5). Credentials: ``credentials.secret`` (a secret holding an API token),
else the secret/environment variable HCLOUD_TOKEN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from deplat import hetzner
from deplat.dns.base import (
    RECORD_TYPES,
    CasConflict,
    Change,
    Deadline,
    DnsBackend,
    DnsError,
    ErrorClass,
    Served,
    check_known,
    check_timeout,
    check_url,
    classify_http,
    option_float,
    quote_txt,
)
from deplat.errors import ErrorClass as Kind

if TYPE_CHECKING:
    from hcloud import Client
    from hcloud.actions import BoundAction
    from hcloud.zones import Zone, ZoneRecord, ZoneRRSet

    from deplat.dns.zone import AppZone, DnsEntry
    from deplat.spec.model import DnsProvider, Spec

OPTIONS = ("zone", "endpoint", "timeout")
ENDPOINT = hetzner.DEFAULT_ENDPOINT
_ZONE = re.compile(r"^\d+$|^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\.?$")


def validate_options(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    options = provider.options
    problems = check_known(options, OPTIONS, "hcloud")
    zone = options.get("zone")
    if zone is not None and (not isinstance(zone, str | int) or not _ZONE.match(str(zone).lower())):
        problems.append((("options", "zone"), f"'{zone}' is not a zone name or id"))
    same = isinstance(zone, str) and zone.lower().rstrip(".") == spec.domain.zone.lower().rstrip(".")
    if isinstance(zone, str) and not zone.isdigit() and not same:
        problems.append(
            (("options", "zone"), f"zone '{zone}' is not the spec's domain.zone '{spec.domain.zone}'")
        )
    problems += check_url(options, "endpoint")
    problems += check_timeout(options)
    return problems


# deplat.hetzner's classes as the DNS switch's (a bad token is "auth" there, capacity is transient)
_DNS_CLASS: dict[Kind, ErrorClass] = {
    Kind.SUSPENDED: "suspended",
    Kind.FORBIDDEN: "forbidden",
    Kind.TRANSIENT: "transient",
    Kind.CAPACITY: "transient",
}


def dns_error_class(code: str | int, message: str) -> ErrorClass:
    """An API error's code (an ``hcloud.APIException``'s or a failed action's) as a DNS error
    class: ``unauthorized`` ("invalid or unknown token") is "auth"."""
    if code == "unauthorized":
        return "auth"
    if isinstance(code, int):  # no error JSON: an HTTP status (a proxy's page, a 502)
        return classify_http(code, message)
    return _DNS_CLASS.get(hetzner.error_class(code, message), "fatal")


class Backend(DnsBackend):
    kind = "hcloud"
    server_side_cas = False
    extra = "hcloud"
    sdk_modules = ("hcloud", "requests")

    def __init__(self, provider: DnsEntry, app: AppZone, secrets: Any) -> None:
        super().__init__(provider, app, secrets)
        self.zone_ref = str(self.options.get("zone", self.zone)).rstrip(".")
        self.endpoint = str(self.options.get("endpoint", ENDPOINT))
        self.request_timeout = option_float(self.options, "timeout", 5.0)

    def _token(self) -> str:
        secret = self.provider.credentials.secret or "HCLOUD_TOKEN"
        return self.secrets.require(secret, f"API token of DNS provider {self.name}")

    def _client(self, deadline: Deadline) -> Client:
        return hetzner.client(self._token(), self.endpoint, deadline, self.request_timeout)

    def _zone(self) -> Zone:
        from hcloud.zones import Zone

        return Zone(id=int(self.zone_ref)) if self.zone_ref.isdigit() else Zone(name=self.zone_ref)

    def _rrset(self, name: str, rdtype: str) -> ZoneRRSet:
        from hcloud.zones import ZoneRRSet

        return ZoneRRSet(name=self.relative(name), type=rdtype, zone=self._zone())  # type: ignore[arg-type]

    def relative(self, name: str) -> str:
        """``www.example.org`` -> ``www``; the apex -> ``@`` (the API's RRSet names)."""
        if name == self.zone:
            return "@"
        return name[: -(len(self.zone) + 1)] if name.endswith("." + self.zone) else name

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """The client's failures as ``DnsError`` / ``CasConflict``."""
        import requests
        from hcloud import APIException
        from hcloud.actions import ActionFailedException

        try:
            yield
        except hetzner.OutOfTime:
            raise DnsError(
                f"Hetzner DNS: no time left to {what}; a write already sent may still be applied",
                "transient",
            ) from None
        except APIException as exc:
            if exc.code == "uniqueness_error":  # 409: created by someone else since our read
                text = hetzner.describe(exc)
                raise CasConflict(f"Hetzner DNS answered 409: {text}; nothing was written") from None
            kind = dns_error_class(exc.code, str(exc.message))
            raise DnsError(f"Hetzner DNS answered: {hetzner.describe(exc)} ({what})", kind) from None
        except ActionFailedException as exc:
            error = exc.action.error
            code = str(error["code"]) if error else ""
            kind = dns_error_class(code, exc.message)
            raise DnsError(f"Hetzner DNS could not {what}: {hetzner.describe(exc)}", kind) from None
        except requests.Timeout:
            raise DnsError(
                f"Hetzner DNS did not answer within {self.request_timeout:.2g} s ({what})", "transient"
            ) from None
        except requests.RequestException as exc:
            raise DnsError(f"cannot reach Hetzner DNS: {type(exc).__name__} ({what})", "transient") from None

    def _wait(self, action: BoundAction | None) -> None:
        """Wait for a write's action to succeed (``None``: nothing was written)."""
        if action is not None:
            hetzner.wait(action)

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        api = self._client(deadline)
        served: dict[str, Served] = {}
        for name in names:
            values: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            with self._calls(f"read {name}"):
                rrsets = api.zones.get_rrset_all(self._zone(), name=self.relative(name), type=["A", "AAAA"])
            for rrset in rrsets:
                rdtype = str(rrset.type)
                if rrset.name == self.relative(name) and rdtype in RECORD_TYPES:
                    values[rdtype] += [r.value for r in rrset.records or []]
                    if rrset.ttl is not None:
                        ttls[rdtype] = int(rrset.ttl)
            served[name] = Served(values["A"], values["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        from hcloud.zones import ZoneRecord

        api = self._client(deadline)
        for change in changes:
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                rrset = self._rrset(change.name, rdtype)
                records = [ZoneRecord(value=v) for v in after]
                with self._calls(f"write {change.name} {rdtype}"):
                    if not after:
                        if before:
                            self._wait(_delete(api, rrset))
                    elif not before:
                        self._wait(_create(api, rrset, ttl, records))
                    else:
                        if before != after:
                            self._wait(api.zones.set_rrset_records(rrset, records))
                        if change.current.ttl_of(rdtype, ttl) != ttl:
                            self._wait(api.zones.change_rrset_ttl(rrset, ttl))

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        from hcloud.zones import ZoneRecord

        # TXT values go to the API in zone-file form, quoted (as pulumi-hcloud's txt_record makes them)
        api = self._client(deadline)
        records = [ZoneRecord(value=quote_txt(v)) for v in values]
        rrset, what = self._rrset(name, "TXT"), f"write TXT {name}"
        try:
            with self._calls(what):
                self._wait(_create(api, rrset, ttl, records))
        except CasConflict:  # 409 uniqueness_error: the set exists (an old challenge): replace its records
            with self._calls(what):
                self._wait(api.zones.set_rrset_records(rrset, records))

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        api = self._client(deadline)
        with self._calls(f"delete TXT {name}"):
            self._wait(_delete(api, self._rrset(name, "TXT")))


def _create(api: Client, rrset: ZoneRRSet, ttl: int, records: list[ZoneRecord]) -> BoundAction:
    assert rrset.zone is not None and rrset.name is not None and rrset.type is not None
    created = api.zones.create_rrset(rrset.zone, name=rrset.name, type=rrset.type, ttl=ttl, records=records)
    return created.action


def _delete(api: Client, rrset: ZoneRRSet) -> BoundAction | None:
    """Delete an RRSet; one that is gone already is fine (``None``: nothing to wait for)."""
    from hcloud import APIException

    try:
        return api.zones.delete_rrset(rrset).action
    except APIException as exc:
        if exc.code == "not_found":
            return None
        raise
