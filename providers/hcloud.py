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
from typing import TYPE_CHECKING, Any

from deplat.providers import OptionProblems, classify_with, sdk_plugin, unknown_option_problems
from deplat.providers.aws import cidr_problems, user_data_problems

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

OPTIONS = (
    "image",
    "ssh_cidrs",
    "ssh_public_key",
    "bucket_location",
    "s3_access_key_secret",
    "s3_secret_key_secret",
)
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
ERROR_SIGNATURES: list[tuple[str, str]] = [
    (r"account (is|has been) (blocked|locked|suspended|disabled)", "suspended"),
    (r"\(unauthorized\)|unable to authenticate|\(forbidden\)|insufficient permissions", "forbidden"),
    (r"\(token_readonly\)|\btoken\b.*invalid", "forbidden"),
    # "locked" as an error *code* means "another action is running on this item": retry later
    (r"\(locked\)|is locked \(there is already an action running\)|\(conflict\)", "transient"),
    (r"rate_limit_exceeded|\(server_error\)|\(service_error\)|\(maintenance\)", "transient"),
    (r"\(resource_unavailable\)|\(unavailable\)|\(timeout\)", "transient"),
    (r"connection reset|i/o timeout|TLS handshake timeout|status code 5\d\d", "transient"),
]

SUSPENSION_SIGNATURES: list[tuple[int | None, str]] = [
    (None, r"account (is|has been) (blocked|locked|suspended)"),
]


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    problems = unknown_option_problems(site, OPTIONS)
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


def classify_error(text: str) -> str:
    """suspended / forbidden / transient / fatal, from a Hetzner or engine error message."""
    return classify_with(ERROR_SIGNATURES, text)


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
) -> tuple[bool, str, str | None]:
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
        return False, f"no credentials: {name} is not set (Hetzner Cloud API token)", "forbidden"
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
        return False, reason.replace(token, "***"), "transient"
    if response.status_code == 200:
        return True, f"Hetzner Cloud API accepts {name}", None
    text = _api_error_text(response)
    kind = classify_error(text)
    if kind == "fatal" and response.status_code in (401, 403):
        kind = "forbidden"
    elif kind == "fatal" and (response.status_code == 429 or response.status_code >= 500):
        kind = "transient"
    reason = f"Hetzner Cloud API answered {response.status_code}: {text}"
    return False, reason.replace(token, "***"), kind
