"""``clouddns``: Google Cloud DNS through its REST API (httpx + google-auth), with a server-side CAS.

Reads: ``GET {endpoint}/projects/{project}/managedZones/{zone}/rrsets?name=NAME.``.
Writes: one ``POST .../changes`` whose ``deletions`` are the exact record sets read just before
(values and TTL) and whose ``additions`` are the new ones. Cloud DNS applies a change atomically
and refuses it (HTTP 412 conditionNotMet, or 409 alreadyExists) when a deletion does not match what
it holds, so a record changed by someone else in between makes the change fail and nothing is
written.

Options: ``project``, ``managed_zone`` (the zone's resource name), ``endpoint`` (default
https://dns.googleapis.com/dns/v1; tests point it at a fake on loopback), ``timeout`` (default 5).
Credentials: ``credentials.file`` (a service-account JSON file), ``credentials.secret`` (a secret
holding a service-account JSON or an OAuth access token), else Application Default Credentials.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deplat.dns.base import (
    RECORD_TYPES,
    Change,
    Deadline,
    DnsBackend,
    DnsError,
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

OPTIONS = ("project", "managed_zone", "endpoint", "timeout")
ENDPOINT = "https://dns.googleapis.com/dns/v1"
SCOPES = ["https://www.googleapis.com/auth/ndev.clouddns.readwrite"]
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.:-]{1,100}$")
_ZONE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$|^\d+$")


def validate_options(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    options = provider.options
    problems = check_known(options, OPTIONS, "clouddns")
    for key, pattern, what in (
        ("project", _PROJECT, "a GCP project id"),
        ("managed_zone", _ZONE, "a Cloud DNS managed zone name (e.g. guestbook-zone)"),
    ):
        value = options.get(key)
        if value is None:
            problems.append((("options",), f"a clouddns DNS provider needs options.{key} ({what})"))
        elif not isinstance(value, str) or not pattern.match(value):
            problems.append((("options", key), f"'{value}' is not {what}"))
    problems += check_url(options, "endpoint")
    problems += check_timeout(options)
    return problems


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        reasons = [e.get("reason", "") for e in error.get("errors", []) if isinstance(e, dict)]
        reason = f" ({', '.join(r for r in reasons if r)})" if any(reasons) else ""
        return f"{error.get('message', '')}{reason}"
    return str(body)


class Backend(DnsBackend):
    kind = "clouddns"
    server_side_cas = True
    extra = "gcp"
    sdk_modules = ("google.auth", "requests")  # service-account keys; a bare access token needs neither

    def __init__(self, provider: DnsProvider, spec: Spec, secrets: Any) -> None:
        super().__init__(provider, spec, secrets)
        self.project = str(self.options.get("project", ""))
        self.managed_zone = str(self.options.get("managed_zone", ""))
        self._credentials: Any = None
        self._token: str | None = None
        self.api = JsonApi(
            "Cloud DNS",
            str(self.options.get("endpoint", ENDPOINT)),
            self._headers,
            option_float(self.options, "timeout", 5.0),
            _error_text,
        )

    @property
    def zone_path(self) -> str:
        return f"/projects/{quote(self.project)}/managedZones/{quote(self.managed_zone)}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token()}"}

    def _access_token(self) -> str:
        if self._token is not None:
            return self._token
        creds = self.provider.credentials
        try:
            if creds.secret:
                value = self.secrets.require(creds.secret, f"credentials of DNS provider {self.name}")
                if value.lstrip().startswith("{"):
                    import json

                    from google.oauth2 import service_account

                    self._credentials = service_account.Credentials.from_service_account_info(
                        json.loads(value), scopes=SCOPES
                    )
                else:  # an OAuth access token as is
                    self._token = value
                    return value
            elif creds.file:
                from google.oauth2 import service_account

                path = (self.spec.base_dir / creds.file).expanduser()
                self._credentials = service_account.Credentials.from_service_account_file(
                    str(path), scopes=SCOPES
                )
            else:
                import google.auth

                self._credentials, _ = google.auth.default(scopes=SCOPES)
            import google.auth.transport.requests

            self._credentials.refresh(google.auth.transport.requests.Request())
        except DnsError:
            raise
        except Exception as exc:  # DefaultCredentialsError, RefreshError, bad JSON, missing file
            raise DnsError(
                f"Google credentials for {self.name}: {type(exc).__name__}: {exc}", "auth"
            ) from None
        self._token = str(self._credentials.token)
        self.secrets.masker.add(self._token)
        return self._token

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        served: dict[str, Served] = {}
        for name in names:
            values: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            page: str | None = None
            for _ in range(20):  # a name has a handful of record sets; bounded all the same
                params = {"name": name + "."}
                if page:
                    params["pageToken"] = page
                body = self.api.call(
                    "GET", f"{self.zone_path}/rrsets", deadline, f"read {name}", params=params
                )
                for rrset in body.get("rrsets", []):
                    rdtype = rrset.get("type")
                    if rrset.get("name", "").rstrip(".").lower() == name and rdtype in RECORD_TYPES:
                        values[rdtype] += list(rrset.get("rrdatas", []))
                        if rrset.get("ttl") is not None:
                            ttls[rdtype] = int(rrset["ttl"])
                page = body.get("nextPageToken")
                if not page:
                    break
            served[name] = Served(values["A"], values["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        additions: list[dict[str, Any]] = []
        deletions: list[dict[str, Any]] = []
        for change in changes:
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                if before:
                    deletions.append(_rrset(change.name, rdtype, before, change.current.ttl_of(rdtype, ttl)))
                if after:
                    additions.append(_rrset(change.name, rdtype, after, ttl))
        if not additions and not deletions:
            return
        body = {"kind": "dns#change", "additions": additions, "deletions": deletions}
        self.api.call("POST", f"{self.zone_path}/changes", deadline, "change records", json=body)

    def _txt(self, name: str, deadline: Deadline) -> list[dict[str, Any]]:
        params = {"name": name + ".", "type": "TXT"}
        body = self.api.call("GET", f"{self.zone_path}/rrsets", deadline, f"read TXT {name}", params=params)
        return [r for r in body.get("rrsets", []) if r.get("type") == "TXT"]

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        # one change: delete the TXT set exactly as served, add the new one
        body = {
            "kind": "dns#change",
            "additions": [_rrset(name, "TXT", [quote_txt(v) for v in values], ttl)],
            "deletions": self._txt(name, deadline),
        }
        self.api.call("POST", f"{self.zone_path}/changes", deadline, f"write TXT {name}", json=body)

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        deletions = self._txt(name, deadline)
        if deletions:
            body = {"kind": "dns#change", "additions": [], "deletions": deletions}
            self.api.call("POST", f"{self.zone_path}/changes", deadline, f"delete TXT {name}", json=body)

    def close(self) -> None:
        self.api.close()


def _rrset(name: str, rdtype: str, values: list[str], ttl: int) -> dict[str, Any]:
    return {
        "kind": "dns#resourceRecordSet",
        "name": name + ".",
        "type": rdtype,
        "ttl": int(ttl),
        "rrdatas": values,
    }
