"""``clouddns``: Google Cloud DNS through Google's own client (google-cloud-dns), with a server-side CAS.

Reads: ``GET {endpoint}/projects/{project}/managedZones/{zone}/rrsets?name=NAME.`` through the
client's connection (``ManagedZone.list_resource_record_sets`` has no name filter: it would page
through the whole zone on every read).
Writes: one ``Changes`` (``POST .../changes``) whose ``deletions`` are the exact record sets read
just before (values and TTL) and whose ``additions`` are the new ones. Cloud DNS applies a change
atomically and refuses it (HTTP 412 conditionNotMet, or 409 alreadyExists) when a deletion does not
match what it holds, so a record changed by someone else in between makes the change fail and
nothing is written. A change is ``pending`` until Cloud DNS has applied it everywhere: the backend
reloads it until it is ``done`` (bounded by the operation's deadline) before calling a write done.

Every request goes through a google-auth ``AuthorizedSession`` whose timeout is the deadline's time
left (at most ``timeout``), handed to the client as its HTTP object. Errors are the client's typed
exceptions (``google.api_core.exceptions``, ``code`` the HTTP status), classified by
``deplat.dns.base.classify_http``. The credentials, the session and the error text come from
``deplat.google``, shared with the GCP provider's control-plane check.

Options: ``project``, ``managed_zone`` (the zone's resource name), ``endpoint`` (default
https://dns.googleapis.com/dns/v1, the API root with or without its ``/dns/v1``; tests point it at
a fake on loopback), ``timeout`` (default 5).
Credentials: ``credentials.file`` (a service-account JSON file), ``credentials.secret`` (a secret
holding a service-account JSON or an OAuth access token), else Application Default Credentials.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from deplat import google as google_api
from deplat.dns.base import (
    RECORD_TYPES,
    CasConflict,
    Change,
    Deadline,
    DnsBackend,
    DnsError,
    Served,
    check_known,
    check_timeout,
    check_url,
    classify_http,
    option_float,
    quote_txt,
    short,
)

if TYPE_CHECKING:
    from google.cloud.dns import Client, ManagedZone

    from deplat.dns.zone import AppZone, DnsEntry
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


def _api_root(endpoint: str) -> str:
    """The client's ``api_endpoint``: it adds ``/dns/v1`` itself."""
    root = endpoint.rstrip("/")
    return root[: -len("/dns/v1")] if root.endswith("/dns/v1") else root


class Backend(DnsBackend):
    kind = "clouddns"
    server_side_cas = True
    extra = "gcp"
    sdk_modules = ("google.cloud.dns", "google.auth", "requests")

    def __init__(self, provider: DnsEntry, app: AppZone, secrets: Any) -> None:
        super().__init__(provider, app, secrets)
        self.project = str(self.options.get("project", ""))
        self.managed_zone = str(self.options.get("managed_zone", ""))
        self.endpoint = str(self.options.get("endpoint", ENDPOINT))
        self.request_timeout = option_float(self.options, "timeout", 5.0)
        self._credentials: Any = None

    def _google_credentials(self) -> Any:
        """google-auth credentials, refreshed once here so that a bad key is an "auth" failure.

        Not ``deplat.google.access_token`` (the GCP provider's check), on purpose: a key here must be
        a service account's (this backend's documented credentials; another key type is an "auth"
        failure), a secret may hold a bare access token, and the credentials are kept by this
        backend object rather than per key for the whole process."""
        if self._credentials is not None:
            return self._credentials
        creds = self.provider.credentials
        try:
            if creds.secret:
                value = self.secrets.require(creds.secret, f"credentials of DNS provider {self.name}")
                if not value.lstrip().startswith("{"):  # an OAuth access token as is: nothing to refresh
                    self._credentials = google_api.token_credentials(value)
                    return self._credentials
                credentials = google_api.service_account_credentials(json.loads(value), SCOPES)
            elif creds.file:
                path = (self.app.base_dir / creds.file).expanduser()
                info = json.loads(path.read_text(encoding="utf-8"))
                credentials = google_api.service_account_credentials(info, SCOPES)
            else:
                credentials = google_api.default_credentials(SCOPES)
            google_api.refresh(credentials, google_api.requests_transport(), self.secrets.masker)
        except DnsError:
            raise
        except Exception as exc:  # DefaultCredentialsError, RefreshError, bad JSON, missing file
            raise DnsError(
                f"Google credentials for {self.name}: {type(exc).__name__}: {exc}", "auth"
            ) from None
        self._credentials = credentials
        return credentials

    def _client(self, deadline: Deadline) -> Client:
        """A Cloud DNS client whose every request ends by ``deadline``."""
        from google.cloud import dns

        cap = self.request_timeout

        def timeout() -> float:
            deadline.check("call Cloud DNS")
            return deadline.timeout(cap)

        credentials = self._google_credentials()
        session = google_api.authorized_session(credentials, timeout)
        options = {"api_endpoint": _api_root(self.endpoint)}
        return dns.Client(
            project=self.project, credentials=credentials, _http=session, client_options=options
        )

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """The client's failures as ``DnsError`` / ``CasConflict``."""
        import requests
        from google.api_core import exceptions

        try:
            yield
        except exceptions.GoogleAPICallError as exc:
            status = int(exc.code or 0)
            text = short(google_api.call_error_text(exc))
            if status in (409, 412):
                raise CasConflict(f"Cloud DNS answered {status}: {text}; nothing was written") from None
            error_class = classify_http(status, text)
            raise DnsError(f"Cloud DNS answered HTTP {status}: {text} ({what})", error_class) from None
        except requests.Timeout:
            raise DnsError(
                f"Cloud DNS did not answer within {self.request_timeout:.2g} s ({what})", "transient"
            ) from None
        except requests.RequestException as exc:
            raise DnsError(f"cannot reach Cloud DNS: {type(exc).__name__} ({what})", "transient") from None

    def _zone(self, client: Client) -> ManagedZone:
        return client.zone(self.managed_zone)

    def _rrsets(self, client: Client, name: str, rdtype: str | None = None) -> list[dict[str, Any]]:
        """The record sets named ``name`` (of one type), as the API's dicts, every page."""
        path = f"{self._zone(client).path}/rrsets"
        params = {"name": name + "."} | ({"type": rdtype} if rdtype else {})
        found: list[dict[str, Any]] = []
        for _ in range(20):  # a name has a handful of record sets; bounded all the same
            with self._calls(f"read {name}"):
                body = client._connection.api_request(method="GET", path=path, query_params=params)
            found += body.get("rrsets", [])
            if not body.get("nextPageToken"):
                break
            params["pageToken"] = body["nextPageToken"]
        return found

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        client = self._client(deadline)
        served: dict[str, Served] = {}
        for name in names:
            values: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            for rrset in self._rrsets(client, name):
                rdtype = rrset.get("type")
                if rrset.get("name", "").rstrip(".").lower() == name and rdtype in RECORD_TYPES:
                    values[rdtype] += list(rrset.get("rrdatas", []))
                    if rrset.get("ttl") is not None:
                        ttls[rdtype] = int(rrset["ttl"])
            served[name] = Served(values["A"], values["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def _change(
        self,
        client: Client,
        deadline: Deadline,
        what: str,
        additions: list[tuple[str, str, list[str], int]],
        deletions: list[tuple[str, str, list[str], int]],
    ) -> None:
        """Send one change (record sets as (name, type, values, ttl)) and wait until it is done."""
        zone = self._zone(client)
        change = zone.changes()
        for name, rdtype, values, ttl in deletions:
            change.delete_record_set(zone.resource_record_set(name + ".", rdtype, ttl, values))
        for name, rdtype, values, ttl in additions:
            change.add_record_set(zone.resource_record_set(name + ".", rdtype, ttl, values))
        with self._calls(what):
            change.create()
            pause = 0.1
            while change.status != "done":  # "pending": Cloud DNS is still applying it
                if deadline.remaining() <= pause:
                    raise DnsError(
                        f"Cloud DNS had not finished change {change.name} when the deadline passed "
                        f"({what}); it may still be applied",
                        "transient",
                    )
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                change.reload()

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        additions: list[tuple[str, str, list[str], int]] = []
        deletions: list[tuple[str, str, list[str], int]] = []
        for change in changes:
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                if before:
                    deletions.append((change.name, rdtype, before, change.current.ttl_of(rdtype, ttl)))
                if after:
                    additions.append((change.name, rdtype, after, ttl))
        if additions or deletions:
            self._change(self._client(deadline), deadline, "change records", additions, deletions)

    def _txt(self, client: Client, name: str) -> list[tuple[str, str, list[str], int]]:
        return [
            (name, "TXT", list(r.get("rrdatas", [])), int(r.get("ttl", 0)))
            for r in self._rrsets(client, name, "TXT")
            if r.get("type") == "TXT"
        ]

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        # one change: delete the TXT set exactly as served, add the new one
        client = self._client(deadline)
        additions = [(name, "TXT", [quote_txt(v) for v in values], ttl)]
        self._change(client, deadline, f"write TXT {name}", additions, self._txt(client, name))

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        client = self._client(deadline)
        deletions = self._txt(client, name)
        if deletions:
            self._change(client, deadline, f"delete TXT {name}", [], deletions)
