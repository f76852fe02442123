"""The ``gcp`` provider: one site is one Compute Engine VM with its data disk, static IP and bucket.

Resources of a site (``build_site``): a VPC network of its own (the project's ``default`` network
opens SSH and RDP to the world), a firewall opening only the app's public ports to instances tagged
with the site (and SSH from ``options.ssh_cidrs``), a static external address, a data disk attached
as device ``data``, an Ubuntu 24.04 VM whose ``user-data`` metadata is the bootstrap (GCP's Debian
images have no cloud-init; Ubuntu's do), and a Cloud Storage bucket with versioning and uniform
access. Every resource carries the labels ``deplat-app`` / ``deplat-site``. No IPv6 (it needs a
dual-stack subnet).

A fresh project has the Compute Engine API off: the site enables compute and storage
(``projects.Service``, left on at destroy) and everything waits for them. The bootstrap goes in
gzip+base64 with ``user-data-encoding: base64`` and is first-boot only (metadata changes in place,
but cloud-init never re-runs: ``ignore_changes``, later changes go over SSH), like the image, until
``deplat up --replace-vm``; a
real replacement deletes the VM first. The data disk and the bucket are kept on destroy; disks are
at least 10 GB.

Options: ``project`` (required), ``network`` (use an existing network instead of creating one),
``image``, ``disk_type`` (pd-balanced), ``ssh_cidrs``, ``ssh_public_key``. Without a zone the site
uses ``<region>-b`` (every region has a zone b; not every one has an a). Only this module imports
``pulumi_gcp``, and only inside ``build_site``. The control-plane check talks to Compute Engine
through ``deplat.google`` (credentials, the token, the authorized call, the error text), which the
Cloud DNS backend shares.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deplat import google as google_api
from deplat.errors import ErrorClass
from deplat.providers.base import (
    Capabilities,
    ControlPlane,
    ErrorRow,
    HostingProvider,
    OptionProblems,
    ProviderOptions,
    cidr_problems,
    classify_with,
    status_class,
    user_data_problems,
    volume_size_problems,
)

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

SIZES: dict[str, str] = {"small": "e2-small", "medium": "e2-medium", "large": "e2-standard-2"}
DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d{1,2}$")
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
NATIVE_SIZE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
ARM_TYPE_RE = re.compile(r"^(t2a|c4a|a4x)-")  # Ampere / Axion machine families
DATA_DEVICE_NAME = "data"
USER_DATA_LIMIT = 256 * 1024  # one metadata value
MIN_DISK_GIB = 10  # pd-balanced, pd-ssd, pd-standard and hyperdisk-balanced disks are at least 10 GB

_BILLING = "Cloud Billing, disabling billing: cloud.google.com/billing/docs/how-to/modify-project"
_GOOGLE_ERRORS = "Google API error model and Compute Engine errors, cloud.google.com/apis/design/errors"
_ERROR_INFO = "google.rpc.ErrorInfo reasons (googleapis/google/api/error_reason.proto)"
_SERVICE_USAGE = "Service Usage API, enabling a service (cloud.google.com/service-usage/docs/enable-disable)"
_GO_NET = "the Pulumi google provider's transport errors (Go net/http, crypto/tls)"
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(
        "billing account .{0,80}(disabled|closed|absent)|has billing disabled|billing (is )?not enabled",
        ErrorClass.SUSPENDED,
        _BILLING,
    ),
    # "Billing must be enabled for activation of service '...' in project '...' to proceed"
    # (Service Usage, enabling compute.googleapis.com in a project without billing)
    ErrorRow(
        "UREQ_PROJECT_BILLING_NOT_FOUND|Billing must be enabled|requires billing to be enabled",
        ErrorClass.SUSPENDED,
        _SERVICE_USAGE,
    ),
    ErrorRow("BILLING_DISABLED|\\baccountDisabled\\b", ErrorClass.SUSPENDED, _ERROR_INFO + "; " + _BILLING),
    # "The consumer project has been suspended" (ErrorReason CONSUMER_SUSPENDED)
    ErrorRow("CONSUMER_SUSPENDED|project .{0,80}(has been|is) suspended", ErrorClass.SUSPENDED, _ERROR_INFO),
    # "The user project specified in the request is invalid / the caller lacks serviceusage on it"
    # (ErrorReason USER_PROJECT_DENIED): a permission to grant, not a suspension
    ErrorRow("USER_PROJECT_DENIED", ErrorClass.FORBIDDEN, _ERROR_INFO),
    # "The zone '...' does not have enough resources available to fulfill the request"
    ErrorRow("ZONE_RESOURCE_POOL_EXHAUSTED|STOCKOUT", ErrorClass.CAPACITY, _GOOGLE_ERRORS),
    ErrorRow(
        "PERMISSION_DENIED|\\bforbidden\\b|Error 403|Required '[^']+' permission",
        ErrorClass.FORBIDDEN,
        _GOOGLE_ERRORS,
    ),
    ErrorRow(
        "could not find default credentials|UNAUTHENTICATED|invalid_grant|Error 401",
        ErrorClass.FORBIDDEN,
        _GOOGLE_ERRORS,
    ),
    ErrorRow(
        "RATE_LIMIT_EXCEEDED|rateLimitExceeded|userRateLimitExceeded|Error 429",
        ErrorClass.TRANSIENT,
        _GOOGLE_ERRORS,
    ),
    ErrorRow(
        "\\bUNAVAILABLE\\b|backendError|internalError|Error 50[0234]",
        ErrorClass.TRANSIENT,
        _GOOGLE_ERRORS,
    ),
    ErrorRow(
        "connection reset|i/o timeout|TLS handshake timeout|operation timed out",
        ErrorClass.TRANSIENT,
        _GO_NET,
    ),
)

SUSPENSION_SIGNATURES: tuple[tuple[int | None, str], ...] = (
    (403, r"billing account for the owning project is disabled|\baccountDisabled\b"),
    (None, r"project .{0,80}has been suspended|CONSUMER_SUSPENDED"),
)


class GcpOptions(ProviderOptions):
    project: str | None = Field(None, description="the GCP project id (required)")
    network: str | None = Field(None, description="VPC network (default: default)")
    image: str | None = Field(None, description="boot image (default: Ubuntu 24.04 LTS)")
    disk_type: str | None = Field(None, description="persistent disk type: " + ", ".join(DISK_TYPES))
    ssh_cidrs: list[str] | None = Field(None, description="CIDR blocks allowed to reach SSH (port 22)")
    ssh_public_key: str | None = Field(None, description="an OpenSSH public key for the VM's default user")


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    problems: OptionProblems = []
    project = site.options.get("project")
    if project is None:
        problems.append((("options",), "a gcp site needs options.project (the GCP project id)"))
    elif not PROJECT_RE.match(str(project)):
        problems.append(
            (("options", "project"), f"'{project}' is not a GCP project id (6-30 of a-z, 0-9, '-')")
        )
    if site.region is None:
        problems.append(((), "a gcp site needs a region, e.g. region: europe-west4"))
    elif not REGION_RE.match(site.region):
        problems.append((("region",), f"'{site.region}' is not a GCP region (e.g. europe-west4)"))
    if (
        site.zone is not None
        and site.region is not None
        and REGION_RE.match(site.region)
        and not re.fullmatch(re.escape(site.region) + r"-[a-z]", site.zone)
    ):
        problems.append(
            (("zone",), f"'{site.zone}' is not a zone of region {site.region} (e.g. {site.region}-a)")
        )
    if site.size not in SIZES and not NATIVE_SIZE_RE.match(site.size):
        problems.append(
            (
                ("size",),
                f"'{site.size}' is neither small, medium, large nor a GCP machine type (e.g. e2-small)",
            )
        )
    dtype = site.options.get("disk_type")
    if dtype is not None and dtype not in DISK_TYPES:
        problems.append((("options", "disk_type"), f"'{dtype}' is not one of {', '.join(DISK_TYPES)}"))
    problems += volume_size_problems(spec, MIN_DISK_GIB, "GCP persistent disks")
    problems += cidr_problems(site)
    if not problems:
        from deplat.stacks.bootstrap import pack

        problems += user_data_problems(
            site, spec, data_device(""), USER_DATA_LIMIT, measure=lambda text: len(pack(text))
        )
    return problems


def machine_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)


def zone(site: Site) -> str:
    return site.zone or f"{site.region}-b"


def data_device(_: str = "") -> str:
    """Provider bit: the data disk as the VM sees it, named by the device name it is attached with."""
    return f"/dev/disk/by-id/google-{DATA_DEVICE_NAME}"


# Services a site uses; a fresh project has compute.googleapis.com off. Enabling one that is on
# already is a no-op. They stay on when the stack is destroyed: other things may use them.
SERVICES = ("compute.googleapis.com", "storage.googleapis.com")


def build_site(ctx: SiteContext) -> dict[str, Any]:
    """The site's GCP resources; returns its outputs (see ``deplat.stacks.site``)."""
    import pulumi
    import pulumi_gcp as gcp

    site = ctx.site
    labels = ctx.labels
    tag = f"deplat-{site.name}"
    project = str(site.options.get("project") or "")
    enabled = {
        name: gcp.projects.Service(
            ctx.resource_name(name.split(".")[0] + "-api"),
            project=project,
            service=name,
            disable_on_destroy=False,
            disable_dependent_services=False,
        )
        for name in SERVICES
    }
    needs_compute = pulumi.ResourceOptions(depends_on=[enabled["compute.googleapis.com"]])
    if site.options.get("network"):
        network: Any = str(site.options["network"])
    else:
        network = gcp.compute.Network(
            ctx.resource_name("net"),
            auto_create_subnetworks=True,
            description=f"deplat {ctx.app} {site.name}",
            opts=needs_compute,
        ).id
    allows: dict[str, list[str]] = {}
    for port, proto in ctx.public_ports:
        allows.setdefault(proto, []).append(str(port))
    if allows:  # the API refuses a firewall that allows nothing
        gcp.compute.Firewall(
            ctx.resource_name("firewall"),
            network=network,
            direction="INGRESS",
            allows=[
                gcp.compute.FirewallAllowArgs(protocol=proto, ports=ports) for proto, ports in allows.items()
            ],
            source_ranges=["0.0.0.0/0"],
            target_tags=[tag],
            description=f"deplat {ctx.app} {site.name}: public ports only",
            opts=needs_compute,
        )
    if ctx.ssh_cidrs:
        gcp.compute.Firewall(
            ctx.resource_name("ssh"),
            network=network,
            direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
            source_ranges=ctx.ssh_cidrs,
            target_tags=[tag],
            description="ssh from the configured source ranges",
            opts=needs_compute,
        )
    address = gcp.compute.Address(
        ctx.resource_name("ip"),
        region=site.region,
        address_type="EXTERNAL",
        labels=labels,
        opts=needs_compute,
    )
    disk = gcp.compute.Disk(
        ctx.resource_name("data"),
        zone=zone(site),
        size=ctx.data_gib,
        type=str(site.options.get("disk_type", "pd-balanced")),
        labels=labels,
        opts=pulumi.ResourceOptions.merge(
            needs_compute, pulumi.ResourceOptions(retain_on_delete=ctx.retain_data)
        ),
    )
    arch = "arm64" if ARM_TYPE_RE.match(machine_type(site)) else "amd64"
    image = str(site.options.get("image") or f"ubuntu-os-cloud/ubuntu-2404-lts-{arch}")
    # packed like AWS's and Hetzner's (gzip, base64): cloud-init's GCE datasource decodes
    # "user-data-encoding: base64" and then un-gzips, ~25 times smaller than the plain text
    metadata: dict[str, Any] = {
        "user-data": ctx.user_data(data_device(), packed=True),
        "user-data-encoding": "base64",
    }
    if ctx.ssh_public_key:
        metadata["ssh-keys"] = f"deplat:{ctx.ssh_public_key}"
    instance = gcp.compute.Instance(
        ctx.resource_name("vm"),
        machine_type=machine_type(site),
        zone=zone(site),
        boot_disk=gcp.compute.InstanceBootDiskArgs(
            initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(image=image, labels=labels)
        ),
        network_interfaces=[
            gcp.compute.InstanceNetworkInterfaceArgs(
                network=network,
                access_configs=[gcp.compute.InstanceNetworkInterfaceAccessConfigArgs(nat_ip=address.address)],
            )
        ],
        attached_disks=[gcp.compute.InstanceAttachedDiskArgs(source=disk.id, device_name=DATA_DEVICE_NAME)],
        metadata=metadata,
        tags=[tag],
        labels=labels,
        allow_stopping_for_update=True,
        # metadata changes in place but cloud-init never re-runs, so a new bootstrap would silently
        # not arrive: it is first-boot only (later changes go over SSH), like the image
        opts=pulumi.ResourceOptions.merge(
            needs_compute,
            pulumi.ResourceOptions(
                ignore_changes=ctx.first_boot_only(
                    [
                        'metadata["user-data"]',
                        'metadata["user-data-encoding"]',
                        "bootDisk.initializeParams.image",
                    ]
                ),
                delete_before_replace=True,
            ),
        ),
    )
    bucket = gcp.storage.Bucket(
        ctx.bucket_name(),
        location=(site.region or "EU").upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        labels=labels,
        force_destroy=ctx.force_destroy(),
        opts=pulumi.ResourceOptions(
            depends_on=[enabled["storage.googleapis.com"]], retain_on_delete=ctx.retain_data
        ),
    )
    return {
        "ipv4": address.address,
        "url": ctx.url,
        "bucket": bucket.name,
        "instance_id": instance.id,
    }


def classify_error(text: str) -> ErrorClass:
    """suspended / forbidden / transient / fatal, from a GCP or engine error message."""
    return classify_with(ERROR_TABLE, text)


def _credentials_file(site: Site, spec_dir: Path | None) -> Path | None:
    if not site.credentials.file:
        return None
    path = Path(site.credentials.file).expanduser()
    return path if path.is_absolute() or spec_dir is None else spec_dir / path


def check_credentials(
    site: Site,
    secrets: SecretStore | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    spec_dir: Path | None = None,
) -> tuple[bool, str]:
    """Are GCP credentials available for ``site``? Looks at files and env only; no network call."""
    own = _credentials_file(site, spec_dir)
    return google_api.find_credentials(own, f"credentials.file of site {site.name}", environ, home)


def provider_config(
    site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
) -> dict[str, tuple[str, bool]]:
    """Pulumi stack config for the site's GCP provider: key -> (value, is_secret)."""
    config: dict[str, tuple[str, bool]] = {}
    if site.options.get("project"):
        config["gcp:project"] = (str(site.options["project"]), False)
    if site.region:
        config["gcp:region"] = (site.region, False)
        config["gcp:zone"] = (zone(site), False)
    own = _credentials_file(site, spec_dir)
    if own is not None:
        config["gcp:credentials"] = (str(own.resolve()), False)
    return config


# ``control_plane_check``: credentials that Compute Engine still accepts for the site's project. The
# endpoint is the one the Terraform/Pulumi google provider honours (``GOOGLE_COMPUTE_CUSTOM_ENDPOINT``).
# Credentials, the token, the authorized GET and the error text: ``deplat.google`` (shared with Cloud DNS).
DEFAULT_COMPUTE_ENDPOINT = "https://compute.googleapis.com/compute/v1/"


def control_plane_check(
    site: Site, spec: Spec | None = None, secrets: SecretStore | None = None, timeout: float = 5.0
) -> ControlPlane:
    """Does Compute Engine still accept the site's credentials? ``(ok, reason, error class)``.

    One read-only call: ``GET {GOOGLE_COMPUTE_CUSTOM_ENDPOINT}projects/{project}?fields=name``, with
    a token as the google provider finds one (``deplat.google.access_token``: ``credentials.file``
    relative to the spec, ``GOOGLE_OAUTH_ACCESS_TOKEN``, ``GOOGLE_CREDENTIALS``, application default
    credentials); a key file costs one more call, to its token endpoint. No credentials
    (``check_credentials`` fails): ``(False, "no credentials: ...", "forbidden")`` without a call.
    Errors: ``classify_error`` on "Error <status>: <message> (<reasons>)", then 401/403 forbidden,
    429/5xx transient; connection failures and timeouts are ``transient``. No reason carries a token.
    """
    project = str(site.options.get("project") or "")
    if not project:
        return False, f"site {site.name} has no options.project", ErrorClass.FATAL
    own = _credentials_file(site, spec.base_dir if spec is not None else None)
    endpoint = os.environ.get("GOOGLE_COMPUTE_CUSTOM_ENDPOINT") or DEFAULT_COMPUTE_ENDPOINT
    try:
        answer = google_api.get(
            f"{endpoint.rstrip('/')}/projects/{project}",
            {"fields": "name"},
            own=own,
            whose=f"credentials.file of site {site.name}",
            secrets=secrets,
            timeout=timeout,
        )
    except google_api.NoAnswer as exc:
        if exc.kind == "unreachable":
            return False, str(exc), ErrorClass.TRANSIENT
        kind = classify_error(str(exc)) if exc.kind == "refused" else ErrorClass.FATAL
        return False, str(exc), ErrorClass.FORBIDDEN if kind is ErrorClass.FATAL else kind
    if answer.status == 200:
        return True, f"Compute Engine accepts the credentials for project {project}", None
    kind = status_class(classify_error(answer.error), answer.status)
    return False, answer.error + _what_is_off(answer.error, project), kind


_API_OFF = re.compile(r"SERVICE_DISABLED|accessNotConfigured|has not been used in project", re.I)
_BILLING_OFF = re.compile(
    r"billing account .{0,80}(disabled|closed|absent)|billing (is )?not enabled|has billing disabled"
    r"|Billing must be enabled|UREQ_PROJECT_BILLING_NOT_FOUND|BILLING_DISABLED",
    re.I,
)


def _what_is_off(text: str, project: str) -> str:
    """What ``deplat doctor`` should say about a project whose API or billing is off."""
    if _BILLING_OFF.search(text):
        return (
            f"; billing is off for project {project}: link an open billing account to it "
            "(Cloud console, Billing), nothing runs without one"
        )
    if _API_OFF.search(text):
        return (
            f"; the Compute Engine API is off in project {project} (a fresh project has it off): "
            f"`deplat up` turns it on, or `gcloud services enable compute.googleapis.com --project {project}`"
        )
    return ""


def mock_outputs(typ: str, name: str, n: int) -> dict[str, Any]:
    """What Compute Engine and Cloud Storage would compute, as placeholders."""
    if typ == "gcp:compute/address:Address":
        return {"address": f"192.0.2.{n % 250 + 1}", "selfLink": f"mock://addresses/{name}"}
    if typ == "gcp:storage/bucket:Bucket":
        return {"name": f"{name}-{n:07x}", "url": f"gs://{name}-{n:07x}"}
    if typ.startswith("gcp:compute/"):
        return {"selfLink": f"mock://{typ.split('/')[1].split(':')[0]}/{name}"}
    return {}


class GcpProvider(HostingProvider):
    name = "gcp"
    title = "Google Cloud (Compute Engine)"
    capabilities = Capabilities(runs_locally=False, pulumi_program=True, has_vm=True, object_storage=True)
    Options = GcpOptions
    extra = "gcp"
    sdk_modules = ("pulumi", "pulumi_gcp", "google.auth")
    pulumi_sdk = "pulumi_gcp"
    RESOURCE_TYPES = {
        "vm": "gcp:compute/instance:Instance",
        "data volume": "gcp:compute/disk:Disk",
        "backup bucket": "gcp:storage/bucket:Bucket",
    }
    ERROR_TABLE = ERROR_TABLE
    SUSPENSION_SIGNATURES = SUSPENSION_SIGNATURES

    # the hooks are this module's functions (mypy checks each against HostingProvider's signature)
    site_problems = staticmethod(validate_site)
    check_credentials = staticmethod(check_credentials)
    control_plane_check = staticmethod(control_plane_check)
    build_site = staticmethod(build_site)
    provider_config = staticmethod(provider_config)
    mock_outputs = staticmethod(mock_outputs)


provider = GcpProvider()
