"""``route53``: AWS Route 53 through its API (boto3), with a server-side compare-and-swap.

A switch sends one change batch per provider: for each name and type, DELETE the exact record set
read just before (values and TTL) and CREATE the new one. Route 53 applies a batch all or nothing
and rejects a DELETE that does not match exactly, so a record changed by someone else in between
makes the whole batch fail (InvalidChangeBatch) and nothing is written. ``sync`` uses UPSERT.

Options: ``hosted_zone_id``, ``region`` (default us-east-1; Route 53 is global), ``endpoint_url``
(tests: a moto server), ``timeout`` (seconds per request, default 5).
Credentials: ``credentials.profile`` (an AWS profile), ``credentials.file`` (a shared credentials
file), ``credentials.secret`` (a secret holding ``ACCESS_KEY_ID:SECRET_ACCESS_KEY``), else the
standard AWS sources (environment, ~/.aws, instance role). The client (one attempt, ``timeout`` to
connect and to read, shared while its settings, the ``AWS_*`` environment and the credentials files
are unchanged) and the reading of an error are ``deplat.aws``'s, shared with the AWS provider's
control-plane check.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deplat import aws as aws_api
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
    looks_suspended,
    option_float,
    quote_txt,
    short,
)

if TYPE_CHECKING:
    from deplat.dns.zone import AppZone, DnsEntry
    from deplat.spec.model import DnsProvider, Spec

OPTIONS = ("hosted_zone_id", "region", "endpoint_url", "timeout")
_ZONE_ID = re.compile(r"^(/hostedzone/)?[A-Z0-9]{1,32}$")

_AUTH_CODES = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
}
_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}


def validate_options(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    options = provider.options
    problems = check_known(options, OPTIONS, "route53")
    zone_id = options.get("hosted_zone_id")
    if zone_id is None:
        problems.append(
            (("options",), "a route53 DNS provider needs options.hosted_zone_id (e.g. Z0123456789ABCDEFGHIJ)")
        )
    elif not isinstance(zone_id, str) or not _ZONE_ID.match(zone_id):
        problems.append((("options", "hosted_zone_id"), f"'{zone_id}' is not a Route 53 hosted zone id"))
    region = options.get("region")
    if region is not None and (
        not isinstance(region, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region)
    ):
        problems.append((("options", "region"), f"'{region}' is not an AWS region name"))
    problems += check_url(options, "endpoint_url")
    problems += check_timeout(options)
    return problems


def classify_client_error(code: str, message: str, status: int) -> str:
    if code in _AUTH_CODES:
        return "auth"
    if looks_suspended(code) or looks_suspended(message) or code in ("OptInRequired", "Blocked"):
        return "suspended"
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation") or status == 403:
        return "forbidden"
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return "transient"
    return "fatal"


class Backend(DnsBackend):
    kind = "route53"
    server_side_cas = True
    extra = "aws"
    sdk_modules = ("boto3",)

    def __init__(self, provider: DnsEntry, app: AppZone, secrets: Any) -> None:
        super().__init__(provider, app, secrets)
        zone_id = str(self.options.get("hosted_zone_id", ""))
        self.zone_id = zone_id.rsplit("/", 1)[-1]
        self.request_timeout = option_float(self.options, "timeout", 5.0)
        self._client: Any = None

    def _explicit_keys(self) -> tuple[str, str] | None:
        creds = self.provider.credentials
        if not creds.secret:
            return None
        value = self.secrets.require(creds.secret, f"AWS keys of DNS provider {self.name}")
        key_id, _, secret_key = value.partition(":")
        if not secret_key:
            raise DnsError(
                f"secret {creds.secret} must hold ACCESS_KEY_ID:SECRET_ACCESS_KEY (value not shown)", "auth"
            )
        self.secrets.masker.add(secret_key)
        return key_id, secret_key

    def client(self) -> Any:
        """A boto3 client (``deplat.aws.client``: shared by every backend with the same settings while
        the AWS environment and files are unchanged; a watch loop or a resumed failover reuses it)."""
        if self._client is None:
            creds = self.provider.credentials
            settings = aws_api.Settings(
                region=str(self.options.get("region", "us-east-1")),
                timeout=self.request_timeout,
                profile=creds.profile,
                credentials_file=str((self.app.base_dir / creds.file).expanduser()) if creds.file else None,
                keys=self._explicit_keys(),
                endpoint=self.options.get("endpoint_url"),
            )
            try:
                self._client = aws_api.client("route53", settings)
            except Exception as exc:  # ProfileNotFound and friends
                raise DnsError(f"AWS credentials for {self.name}: {exc}", "auth") from None
        return self._client

    def _call(self, what: str, deadline: Deadline, method: str, **kwargs: Any) -> Any:
        import botocore.exceptions as bx

        deadline.check(what)
        client = self.client()
        try:
            return getattr(client, method)(**kwargs)
        except bx.ClientError as exc:
            code, message, answered = aws_api.answer_of(exc)
            status = answered or 0
            if method == "change_resource_record_sets" and (
                code == "InvalidChangeBatch" or (code == "InvalidInput" and "DELETE" in message)
            ):
                raise CasConflict(
                    f"Route 53 rejected the change: {short(message)}; nothing was written"
                ) from None
            if code == "NoSuchHostedZone":
                raise DnsError(f"Route 53 has no hosted zone {self.zone_id} ({what})", "fatal") from None
            cls = classify_client_error(code, message, status)
            raise DnsError(f"Route 53 {code or status}: {short(message)} ({what})", cls) from None  # type: ignore[arg-type]
        except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound) as exc:
            raise DnsError(f"AWS credentials for {self.name}: {exc}", "auth") from None
        except (bx.ConnectTimeoutError, bx.ReadTimeoutError):
            raise DnsError(
                f"Route 53 did not answer within {self.request_timeout:g} s ({what})", "transient"
            ) from None
        except bx.EndpointConnectionError as exc:
            raise DnsError(f"cannot reach Route 53: {exc} ({what})", "transient") from None
        except bx.BotoCoreError as exc:
            raise DnsError(f"Route 53 client error: {exc} ({what})", "transient") from None

    def _record_sets(self, name: str, deadline: Deadline) -> list[dict[str, Any]]:
        answer = self._call(
            f"read {name}",
            deadline,
            "list_resource_record_sets",
            HostedZoneId=self.zone_id,
            StartRecordName=name + ".",
            StartRecordType="A",
            MaxItems="10",
        )
        found = []
        for rrset in answer.get("ResourceRecordSets", []):
            if rrset.get("Name", "").rstrip(".").lower() == name and rrset.get("Type") in RECORD_TYPES:
                found.append(rrset)
        return found

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        served: dict[str, Served] = {}
        for name in names:
            values: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            for rrset in self._record_sets(name, deadline):
                if "AliasTarget" in rrset or rrset.get("SetIdentifier"):
                    raise DnsError(
                        f"{name} {rrset['Type']} is an alias or routing-policy record in Route 53; "
                        "deplat manages plain records only",
                        "fatal",
                    )
                values[rrset["Type"]] += [r["Value"] for r in rrset.get("ResourceRecords", [])]
                if rrset.get("TTL") is not None:
                    ttls[rrset["Type"]] = int(rrset["TTL"])
            served[name] = Served(values["A"], values["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        batch: list[dict[str, Any]] = []
        for change in changes:
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                if change.cas:
                    if before:
                        batch.append(
                            {
                                "Action": "DELETE",
                                "ResourceRecordSet": _rrset(
                                    change.name, rdtype, before, change.current.ttl_of(rdtype, ttl)
                                ),
                            }
                        )
                    if after:
                        batch.append(
                            {"Action": "CREATE", "ResourceRecordSet": _rrset(change.name, rdtype, after, ttl)}
                        )
                elif after:
                    batch.append(
                        {"Action": "UPSERT", "ResourceRecordSet": _rrset(change.name, rdtype, after, ttl)}
                    )
                elif before:
                    batch.append(
                        {
                            "Action": "DELETE",
                            "ResourceRecordSet": _rrset(
                                change.name, rdtype, before, change.current.ttl_of(rdtype, ttl)
                            ),
                        }
                    )
        if not batch:
            return
        self._call(
            "change records",
            deadline,
            "change_resource_record_sets",
            HostedZoneId=self.zone_id,
            ChangeBatch={"Comment": "deplat traffic switch", "Changes": batch},
        )

    def _txt(self, name: str, deadline: Deadline) -> list[dict[str, Any]]:
        answer = self._call(
            f"read TXT {name}",
            deadline,
            "list_resource_record_sets",
            HostedZoneId=self.zone_id,
            StartRecordName=name + ".",
            StartRecordType="TXT",
            MaxItems="1",
        )
        return [
            r
            for r in answer.get("ResourceRecordSets", [])
            if r.get("Name", "").rstrip(".").lower() == name and r.get("Type") == "TXT"
        ]

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        rrset = _rrset(name, "TXT", [quote_txt(v) for v in values], ttl)
        self._call(
            f"write TXT {name}",
            deadline,
            "change_resource_record_sets",
            HostedZoneId=self.zone_id,
            ChangeBatch={
                "Comment": "deplat ACME challenge",
                "Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset}],
            },
        )

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        # Route 53 deletes only an exact match: delete the set as it is served now
        existing = self._txt(name, deadline)
        if existing:
            self._call(
                f"delete TXT {name}",
                deadline,
                "change_resource_record_sets",
                HostedZoneId=self.zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in existing]},
            )


def _rrset(name: str, rdtype: str, values: list[str], ttl: int) -> dict[str, Any]:
    return {
        "Name": name + ".",
        "Type": rdtype,
        "TTL": int(ttl),
        "ResourceRecords": [{"Value": v} for v in values],
    }
