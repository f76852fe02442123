"""``hcloud``: Hetzner DNS, now part of the Hetzner Cloud API (zones and RRSets), over httpx.

Endpoints (https://api.hetzner.cloud/v1, bearer token):
    GET    /zones/{zone}/rrsets?name=RR&type=A&type=AAAA      read (RR is relative, ``@`` = apex)
    POST   /zones/{zone}/rrsets                               create {name, type, ttl, records}
    POST   /zones/{zone}/rrsets/{RR}/{TYPE}/actions/set_records   {records: [{value}]}
    POST   /zones/{zone}/rrsets/{RR}/{TYPE}/actions/change_ttl    {ttl}
    DELETE /zones/{zone}/rrsets/{RR}/{TYPE}

The API has no conditional write, so compare-and-swap here is read-then-write: the switch reads
right before writing and writes nothing when the values differ; only a write landing in the few
milliseconds between that read and the write can slip through. A create where the expected state
was "no records" does fail on the server if someone created them meanwhile (409).

Options: ``zone`` (the zone's name or id; default the spec's domain.zone), ``endpoint`` (tests),
``timeout`` (default 5). Credentials: ``credentials.secret`` (a secret holding an API token),
else the secret/environment variable HCLOUD_TOKEN.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deplat.dns.base import (
    RECORD_TYPES,
    CasConflict,
    Change,
    Deadline,
    DnsBackend,
    Served,
    check_known,
    check_timeout,
    check_url,
    option_float,
    quote_txt,
)
from deplat.dns.httpapi import JsonApi

if TYPE_CHECKING:
    from deplat.spec.model import DnsProvider, Spec

OPTIONS = ("zone", "endpoint", "timeout")
ENDPOINT = "https://api.hetzner.cloud/v1"
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


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('code', '')})"
    return str(body)


class Backend(DnsBackend):
    kind = "hcloud"
    server_side_cas = False

    def __init__(self, provider: DnsProvider, spec: Spec, secrets: Any) -> None:
        super().__init__(provider, spec, secrets)
        self.zone_ref = str(self.options.get("zone", self.zone)).rstrip(".")
        self.api = JsonApi(
            "Hetzner DNS",
            str(self.options.get("endpoint", ENDPOINT)),
            self._headers,
            option_float(self.options, "timeout", 5.0),
            _error_text,
        )

    def _headers(self) -> dict[str, str]:
        secret = self.provider.credentials.secret or "HCLOUD_TOKEN"
        token = self.secrets.require(secret, f"API token of DNS provider {self.name}")
        return {"Authorization": f"Bearer {token}"}

    def relative(self, name: str) -> str:
        """``www.example.org`` -> ``www``; the apex -> ``@`` (the API's RRSet names)."""
        if name == self.zone:
            return "@"
        return name[: -(len(self.zone) + 1)] if name.endswith("." + self.zone) else name

    @property
    def zone_path(self) -> str:
        return f"/zones/{quote(self.zone_ref, safe='')}"

    def _rrset_path(self, name: str, rdtype: str) -> str:
        return f"{self.zone_path}/rrsets/{quote(self.relative(name), safe='@')}/{rdtype}"

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        served: dict[str, Served] = {}
        for name in names:
            params = [("name", self.relative(name)), ("type", "A"), ("type", "AAAA"), ("per_page", "50")]
            body = self.api.call("GET", f"{self.zone_path}/rrsets", deadline, f"read {name}", params=params)
            values: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            for rrset in body.get("rrsets", []):
                rdtype = rrset.get("type")
                if rrset.get("name") == self.relative(name) and rdtype in RECORD_TYPES:
                    values[rdtype] += [r.get("value", "") for r in rrset.get("records", [])]
                    if rrset.get("ttl") is not None:
                        ttls[rdtype] = int(rrset["ttl"])
            served[name] = Served(values["A"], values["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        for change in changes:
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                path = self._rrset_path(change.name, rdtype)
                what = f"write {change.name} {rdtype}"
                records = [{"value": v} for v in after]
                if not after:
                    if before:
                        self.api.call("DELETE", path, deadline, what, missing_ok=True)
                elif not before:
                    body = {
                        "name": self.relative(change.name),
                        "type": rdtype,
                        "ttl": ttl,
                        "records": records,
                    }
                    self.api.call("POST", f"{self.zone_path}/rrsets", deadline, what, json=body)
                else:
                    if before != after:
                        self.api.call(
                            "POST", f"{path}/actions/set_records", deadline, what, json={"records": records}
                        )
                    if change.current.ttl_of(rdtype, ttl) != ttl:
                        self.api.call("POST", f"{path}/actions/change_ttl", deadline, what, json={"ttl": ttl})

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        # TXT values go to the API in zone-file form, quoted (as pulumi-hcloud's txt_record makes them)
        records = [{"value": quote_txt(v)} for v in values]
        path, what = self._rrset_path(name, "TXT"), f"write TXT {name}"
        body = {"name": self.relative(name), "type": "TXT", "ttl": ttl, "records": records}
        try:
            self.api.call("POST", f"{self.zone_path}/rrsets", deadline, what, json=body)
        except CasConflict:  # 409 uniqueness_error: the set exists (an old challenge): replace its records
            self.api.call("POST", f"{path}/actions/set_records", deadline, what, json={"records": records})

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        self.api.call(
            "DELETE", self._rrset_path(name, "TXT"), deadline, f"delete TXT {name}", missing_ok=True
        )

    def close(self) -> None:
        self.api.close()
