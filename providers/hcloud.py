"""The ``hcloud`` provider (Hetzner Cloud): one server with its volume, primary IPs and bucket.

Resources of a site (``build_site``): a firewall opening only the app's public ports (and SSH from
``options.ssh_cidrs``), static primary IPv4 and IPv6 addresses, an Ubuntu 24.04 server whose user
data is the bootstrap (gzip, base64: Hetzner accepts at most 32 KiB, checked by ``validate_site``),
a volume attached to it, all labelled ``deplat-app`` / ``deplat-site``; and a versioned bucket in Hetzner
Object Storage. Object Storage speaks S3 and has no resource in ``pulumi_hcloud``, so the bucket is
an ``aws.s3.Bucket`` through an AWS provider pointed at ``https://<location>.your-objectstorage.com``
with the Object Storage keys (secrets named by ``options.s3_access_key_secret`` /
``s3_secret_key_secret``, default ``HCLOUD_S3_ACCESS_KEY`` / ``HCLOUD_S3_SECRET_KEY``). Object
Storage exists in fsn1, nbg1 and hel1; other locations put the bucket in ``options.bucket_location``
(default fsn1). The bucket carries no tags (its name names app and site).

A site therefore needs two plugins: ``plugins()`` lists both. Only this module imports
``pulumi_hcloud``, and only inside ``build_site``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deplat.errors import ErrorClass
from deplat.providers.aws import cidr_problems, user_data_problems
from deplat.providers.base import (
    Capabilities,
    ControlPlane,
    ErrorRow,
    HostingProvider,
    OptionProblems,
    ProviderOptions,
    classify_with,
    sdk_plugin,
    status_class,
)

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

SIZES: dict[str, str] = {"small": "cx22", "medium": "cx32", "large": "cx42"}
LOCATIONS = ("fsn1", "nbg1", "hel1", "ash", "hil", "sin")
OBJECT_STORAGE_LOCATIONS = ("fsn1", "nbg1", "hel1")
NATIVE_SIZE_RE = re.compile(r"^c[a-z]{1,3}\d{1,3}$")
SECRET_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
USER_DATA_LIMIT = 32 * 1024
DEFAULT_TOKEN = "HCLOUD_TOKEN"
DEFAULT_S3_KEYS = ("HCLOUD_S3_ACCESS_KEY", "HCLOUD_S3_SECRET_KEY")

# hcloud-go formats API errors as "<message> (<code>)"; the codes are those of the Hetzner Cloud API
# reference. The API has no code of its own for a blocked account: its texts are matched instead.
_HCLOUD_CODES = "Hetzner Cloud API reference, error codes, docs.hetzner.cloud/#errors"
_HCLOUD_TEXTS = "Hetzner's texts for a blocked or locked account (support answers quoted in hcloud-go issues)"
_GO_NET = "hcloud-go's transport errors (Go net/http, crypto/tls)"
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(
        "account (is|has been) (blocked|locked|suspended|disabled)", ErrorClass.SUSPENDED, _HCLOUD_TEXTS
    ),
    ErrorRow(
        "\\(unauthorized\\)|unable to authenticate|\\(forbidden\\)|insufficient permissions",
        ErrorClass.FORBIDDEN,
        _HCLOUD_CODES,
    ),
    ErrorRow("\\(token_readonly\\)|\\btoken\\b.*invalid", ErrorClass.FORBIDDEN, _HCLOUD_CODES),
    ErrorRow(
        "\\(locked\\)|is locked \\(there is already an action running\\)|\\(conflict\\)",
        ErrorClass.TRANSIENT,
        _HCLOUD_CODES,
    ),
    ErrorRow(
        "rate_limit_exceeded|\\(server_error\\)|\\(service_error\\)|\\(maintenance\\)",
        ErrorClass.TRANSIENT,
        _HCLOUD_CODES,
    ),
    ErrorRow(
        "\\(resource_unavailable\\)|\\(unavailable\\)|\\(timeout\\)", ErrorClass.TRANSIENT, _HCLOUD_CODES
    ),
    ErrorRow(
        "connection reset|i/o timeout|TLS handshake timeout|status code 5\\d\\d",
        ErrorClass.TRANSIENT,
        _GO_NET,
    ),
)

SUSPENSION_SIGNATURES: tuple[tuple[int | None, str], ...] = (
    (None, r"account (is|has been) (blocked|locked|suspended)"),
)


class HcloudOptions(ProviderOptions):
    image: str | None = Field(None, description="server image (default: ubuntu-24.04)")
    ssh_cidrs: list[str] | None = Field(None, description="CIDR blocks allowed to reach SSH (port 22)")
    ssh_public_key: str | None = Field(None, description="an OpenSSH public key for root")
    bucket_location: str | None = Field(
        None,
        description="Object Storage location of the backup bucket: " + ", ".join(OBJECT_STORAGE_LOCATIONS),
    )
    s3_access_key_secret: str | None = Field(
        None, description=f"secret holding the Object Storage access key (default {DEFAULT_S3_KEYS[0]})"
    )
    s3_secret_key_secret: str | None = Field(
        None, description=f"secret holding the Object Storage secret key (default {DEFAULT_S3_KEYS[1]})"
    )


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    problems: OptionProblems = []
    if site.region is None:
        problems.append(((), f"an hcloud site needs a region (a Hetzner location: {', '.join(LOCATIONS)})"))
    elif site.region not in LOCATIONS:
        problems.append(
            (("region",), f"'{site.region}' is not a Hetzner location; known: {', '.join(LOCATIONS)}")
        )
    if site.zone is not None:
        problems.append((("zone",), "Hetzner has no availability zones: set only region (the location)"))
    if site.size not in SIZES and not NATIVE_SIZE_RE.match(site.size):
        problems.append(
            (
                ("size",),
                f"'{site.size}' is neither small, medium, large nor a Hetzner server type (e.g. cx22)",
            )
        )
    where = site.options.get("bucket_location")
    if where is not None and where not in OBJECT_STORAGE_LOCATIONS:
        problems.append(
            (
                ("options", "bucket_location"),
                f"'{where}' has no Object Storage; one of {', '.join(OBJECT_STORAGE_LOCATIONS)}",
            )
        )
    for key in ("s3_access_key_secret", "s3_secret_key_secret"):
        value = site.options.get(key)
        if value is not None and not SECRET_NAME_RE.match(str(value)):
            problems.append((("options", key), f"'{value}' is not a secret name (e.g. HCLOUD_S3_ACCESS_KEY)"))
    problems += cidr_problems(site)
    if not problems:
        from deplat.stacks.bootstrap import pack

        problems += user_data_problems(
            site, spec, data_device("100000000"), USER_DATA_LIMIT, measure=lambda text: len(pack(text))
        )
    return problems


def server_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)


def bucket_location(site: Site) -> str:
    explicit = site.options.get("bucket_location")
    if explicit:
        return str(explicit)
    return site.region if site.region in OBJECT_STORAGE_LOCATIONS else "fsn1"


def s3_key_names(site: Site) -> tuple[str, str]:
    return (
        str(site.options.get("s3_access_key_secret") or DEFAULT_S3_KEYS[0]),
        str(site.options.get("s3_secret_key_secret") or DEFAULT_S3_KEYS[1]),
    )


def token_name(site: Site) -> str:
    return site.credentials.secret or DEFAULT_TOKEN


def secret_names(site: Site) -> list[str]:
    """The secrets a Hetzner site itself needs (besides the services'): API token, Object Storage keys."""
    return [token_name(site), *s3_key_names(site)]


def data_device(volume_id: str) -> str:
    """Provider bit: a Hetzner volume as the server sees it, named by the volume's id."""
    return f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"


def build_site(ctx: SiteContext) -> dict[str, Any]:
    """The site's Hetzner resources; returns its outputs (see ``deplat.stacks.site``)."""
    import pulumi
    import pulumi_aws as aws
    import pulumi_hcloud as hcloud

    site = ctx.site
    labels = ctx.labels
    everyone = ["0.0.0.0/0", "::/0"]
    rules = [
        hcloud.FirewallRuleArgs(
            direction="in", protocol=proto, port=str(port), source_ips=everyone, description="public port"
        )
        for port, proto in ctx.public_ports
    ]
    if ctx.ssh_cidrs:
        rules.append(
            hcloud.FirewallRuleArgs(
                direction="in", protocol="tcp", port="22", source_ips=ctx.ssh_cidrs, description="ssh"
            )
        )
    firewall = hcloud.Firewall(ctx.resource_name("firewall"), rules=rules, labels=labels)
    ipv4 = hcloud.PrimaryIp(
        ctx.resource_name("ipv4"),
        type="ipv4",
        location=site.region,
        assignee_type="server",
        auto_delete=False,
        labels=labels,
    )
    ipv6 = hcloud.PrimaryIp(
        ctx.resource_name("ipv6"),
        type="ipv6",
        location=site.region,
        assignee_type="server",
        auto_delete=False,
        labels=labels,
    )
    volume = hcloud.Volume(
        ctx.resource_name("data"),
        size=ctx.data_gib,
        location=site.region,
        format="ext4",
        automount=False,
        labels=labels,
    )
    ssh_keys: list[Any] = []
    if ctx.ssh_public_key:
        key = hcloud.SshKey(ctx.resource_name("ssh"), public_key=ctx.ssh_public_key, labels=labels)
        ssh_keys.append(key.id)
    server = hcloud.Server(
        ctx.resource_name("vm"),
        server_type=server_type(site),
        image=str(site.options.get("image") or "ubuntu-24.04"),
        location=site.region,
        user_data=ctx.user_data(volume.id.apply(data_device), packed=True),
        firewall_ids=[firewall.id.apply(int)],
        public_nets=[
            hcloud.ServerPublicNetArgs(
                ipv4_enabled=True, ipv4=ipv4.id.apply(int), ipv6_enabled=True, ipv6=ipv6.id.apply(int)
            )
        ],
        ssh_keys=ssh_keys,
        labels=labels,
    )
    hcloud.VolumeAttachment(
        ctx.resource_name("data-attachment"),
        server_id=server.id.apply(int),
        volume_id=volume.id.apply(int),
        automount=False,
    )
    where = bucket_location(site)
    access, secret = s3_key_names(site)
    storage = aws.Provider(
        ctx.resource_name("object-storage"),
        region=where,
        access_key=ctx.secret_input(access),
        secret_key=ctx.secret_input(secret),
        endpoints=[aws.ProviderEndpointArgs(s3=f"https://{where}.your-objectstorage.com")],
        s3_use_path_style=True,
        skip_credentials_validation=True,
        skip_region_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check=True,
    )
    bucket = aws.s3.Bucket(ctx.bucket_name(), opts=pulumi.ResourceOptions(provider=storage))
    aws.s3.BucketVersioning(
        ctx.resource_name("backups-versioning"),
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=pulumi.ResourceOptions(provider=storage),
    )
    return {
        "ipv4": ipv4.ip_address,
        "ipv6": server.ipv6_address,
        "url": ctx.url,
        "bucket": bucket.bucket,
        "instance_id": server.id,
    }


def classify_error(text: str) -> ErrorClass:
    """suspended / forbidden / transient / fatal, from a Hetzner or engine error message."""
    return classify_with(ERROR_TABLE, text)


def plugin() -> tuple[str, str]:
    return sdk_plugin("pulumi_hcloud")


def plugins() -> list[tuple[str, str]]:
    """Every plugin a Hetzner site needs: hcloud, and aws for the Object Storage bucket."""
    return [plugin(), sdk_plugin("pulumi_aws")]


def _lookup(name: str, secrets: SecretStore | None, env: Mapping[str, str]) -> str | None:
    value = secrets.get(name) if secrets is not None else None
    return value or env.get(name) or None


def check_credentials(
    site: Site, secrets: SecretStore | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[bool, str]:
    """Are the Hetzner token and the Object Storage keys set? Looks them up only; no network call."""
    env = os.environ if environ is None else environ
    missing = [n for n in secret_names(site) if _lookup(n, secrets, env) is None]
    if missing:
        return False, f"not set: {', '.join(missing)} (Hetzner Cloud API token and Object Storage keys)"
    return True, f"{token_name(site)} and the Object Storage keys are set"


def provider_config(site: Site, secrets: SecretStore | None = None) -> dict[str, tuple[str, bool]]:
    """Pulumi stack config for the site's Hetzner provider: key -> (value, is_secret)."""
    token = _lookup(token_name(site), secrets, os.environ)
    return {"hcloud:token": (token, True)} if token else {}


# ``control_plane_check``: the API token that the Hetzner Cloud API still accepts. The endpoint is the
# one the hcloud CLI and the Terraform/Pulumi provider honour (``HCLOUD_ENDPOINT``, with its /v1).
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"


def _api_error_text(response: Any) -> str:
    """hcloud-go's "<message> (<code>)" for an API error answer, else the start of the body."""
    try:
        error = response.json().get("error") or {}
        return f"{error.get('message', '')} ({error.get('code', '')})"
    except Exception:  # not the API's JSON: a proxy's or a load balancer's page
        return " ".join(response.text.split())[:300]


def control_plane_check(
    site: Site, spec: Spec | None = None, secrets: SecretStore | None = None, timeout: float = 5.0
) -> ControlPlane:
    """Does the Hetzner Cloud API still accept the site's token? ``(ok, reason, error class)``.

    One read-only call: ``GET {HCLOUD_ENDPOINT}/servers?per_page=1`` with the token named by
    ``credentials.secret`` (default ``HCLOUD_TOKEN``). No token: ``(False, "no credentials: ...",
    "forbidden")`` without a call. Errors are classified by ``classify_error`` on the API's
    "<message> (<code>)", then by status: 401/403 forbidden, 429/5xx transient; a connection failure
    or timeout is ``transient``. The token never appears in a reason.
    """
    import httpx

    name = token_name(site)
    token = _lookup(name, secrets, os.environ)
    if token is None:
        return False, f"no credentials: {name} is not set (Hetzner Cloud API token)", ErrorClass.FORBIDDEN
    endpoint = (os.environ.get("HCLOUD_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    try:
        response = httpx.get(
            f"{endpoint}/servers",
            params={"per_page": 1},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.TransportError as exc:
        reason = f"Hetzner Cloud API did not answer ({type(exc).__name__}): {exc}"
        return False, reason.replace(token, "***"), ErrorClass.TRANSIENT
    if response.status_code == 200:
        return True, f"Hetzner Cloud API accepts {name}", None
    text = _api_error_text(response)
    kind = classify_error(text)
    kind = status_class(kind, response.status_code)
    reason = f"Hetzner Cloud API answered {response.status_code}: {text}"
    return False, reason.replace(token, "***"), kind


def mock_outputs(typ: str, name: str, n: int) -> dict[str, Any]:
    """What the Hetzner Cloud API and Object Storage would compute, as placeholders."""
    if typ == "hcloud:index/primaryIp:PrimaryIp":
        return {"ipAddress": f"2001:db8::{n:x}" if "ipv6" in name else f"192.0.2.{n % 250 + 1}"}
    if typ == "hcloud:index/server:Server":
        return {"ipv4Address": f"192.0.2.{n % 250 + 1}", "ipv6Address": f"2001:db8::{n:x}"}
    if typ == "aws:s3/bucket:Bucket":
        return {"bucket": f"{name}-{n:07x}", "arn": f"arn:aws:s3:::{name}-{n:07x}"}
    return {}


class HcloudProvider(HostingProvider):
    name = "hcloud"
    title = "Hetzner Cloud"
    capabilities = Capabilities(runs_locally=False, pulumi_program=True, has_vm=True, object_storage=True)
    Options = HcloudOptions
    extra = "hcloud"
    sdk_modules = ("pulumi", "pulumi_hcloud", "pulumi_aws")  # Object Storage buckets via pulumi-aws
    ERROR_TABLE = ERROR_TABLE
    SUSPENSION_SIGNATURES = SUSPENSION_SIGNATURES

    def site_problems(self, site: Site, spec: Spec) -> OptionProblems:
        return validate_site(site, spec)

    def secret_names(self, site: Site) -> list[str]:
        return secret_names(site)

    def check_credentials(
        self, site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
    ) -> tuple[bool, str]:
        return check_credentials(site, secrets)

    def control_plane_check(
        self, site: Site, spec: Spec, secrets: SecretStore | None, timeout: float
    ) -> ControlPlane:
        return control_plane_check(site, spec, secrets, timeout)

    def build_site(self, ctx: SiteContext) -> dict[str, Any]:
        return build_site(ctx)

    def provider_config(
        self, site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
    ) -> dict[str, tuple[str, bool]]:
        return provider_config(site, secrets)

    def plugins(self) -> list[tuple[str, str]]:
        return plugins()

    def mock_outputs(self, typ: str, name: str, n: int) -> dict[str, Any]:
        return mock_outputs(typ, name, n)


provider = HcloudProvider()
