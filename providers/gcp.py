"""The ``gcp`` provider: one site is one Compute Engine VM with its data disk, static IP and bucket.

Resources of a site (``build_site``): a VPC network of its own (the project's ``default`` network
opens SSH and RDP to the world), a firewall opening only the app's public ports to instances tagged
with the site (and SSH from ``options.ssh_cidrs``), a static external address, a data disk attached
as device ``data``, an Ubuntu 24.04 VM whose ``user-data`` metadata is the bootstrap (GCP's Debian
images have no cloud-init; Ubuntu's do), and a Cloud Storage bucket with versioning and uniform
access. Every resource carries the labels ``deplat-app`` / ``deplat-site``. No IPv6 (it needs a
dual-stack subnet).

Options: ``project`` (required), ``network`` (use an existing network instead of creating one),
``image``, ``disk_type`` (pd-balanced), ``ssh_cidrs``, ``ssh_public_key``. Without a zone the site
uses ``<region>-b`` (every region has a zone b; not every one has an a). Only this module imports
``pulumi_gcp``, and only inside ``build_site``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.providers import OptionProblems, classify_with, sdk_plugin, unknown_option_problems
from deplat.providers.aws import cidr_problems, user_data_problems

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

OPTIONS = ("project", "network", "image", "disk_type", "ssh_cidrs", "ssh_public_key")
SIZES: dict[str, str] = {"small": "e2-small", "medium": "e2-medium", "large": "e2-standard-2"}
DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d{1,2}$")
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
NATIVE_SIZE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
ARM_TYPE_RE = re.compile(r"^(t2a|c4a|a4x)-")  # Ampere / Axion machine families
DATA_DEVICE_NAME = "data"
USER_DATA_LIMIT = 256 * 1024  # one metadata value

ERROR_SIGNATURES: list[tuple[str, str]] = [
    (
        r"billing account .{0,80}(disabled|closed|absent)|has billing disabled|billing (is )?not enabled",
        "suspended",
    ),
    (r"requires billing to be enabled|BILLING_DISABLED|\baccountDisabled\b", "suspended"),
    (r"USER_PROJECT_DENIED|CONSUMER_SUSPENDED|project .{0,80}(has been|is) suspended", "suspended"),
    (r"PERMISSION_DENIED|\bforbidden\b|Error 403|Required '[^']+' permission", "forbidden"),
    (r"could not find default credentials|UNAUTHENTICATED|invalid_grant|Error 401", "forbidden"),
    (r"RATE_LIMIT_EXCEEDED|rateLimitExceeded|userRateLimitExceeded|Error 429", "transient"),
    (r"\bUNAVAILABLE\b|backendError|internalError|Error 50[0234]|ZONE_RESOURCE_POOL_EXHAUSTED", "transient"),
    (r"connection reset|i/o timeout|TLS handshake timeout|operation timed out", "transient"),
]

SUSPENSION_SIGNATURES: list[tuple[int | None, str]] = [
    (403, r"billing account for the owning project is disabled|\baccountDisabled\b|USER_PROJECT_DENIED"),
    (None, r"project .{0,80}has been suspended|CONSUMER_SUSPENDED"),
]


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    problems = unknown_option_problems(site, OPTIONS)
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
    problems += cidr_problems(site)
    if not problems:
        problems += user_data_problems(site, spec, data_device(""), USER_DATA_LIMIT)
    return problems


def machine_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)


def zone(site: Site) -> str:
    return site.zone or f"{site.region}-b"


def data_device(_: str = "") -> str:
    """Provider bit: the data disk as the VM sees it, named by the device name it is attached with."""
    return f"/dev/disk/by-id/google-{DATA_DEVICE_NAME}"


def build_site(ctx: SiteContext) -> dict[str, Any]:
    """The site's GCP resources; returns its outputs (see ``deplat.stacks.site``)."""
    import pulumi_gcp as gcp

    site = ctx.site
    labels = ctx.labels
    tag = f"deplat-{site.name}"
    if site.options.get("network"):
        network: Any = str(site.options["network"])
    else:
        network = gcp.compute.Network(
            ctx.resource_name("net"),
            auto_create_subnetworks=True,
            description=f"deplat {ctx.app} {site.name}",
        ).id
    allows: dict[str, list[str]] = {}
    for port, proto in ctx.public_ports:
        allows.setdefault(proto, []).append(str(port))
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
        )
    address = gcp.compute.Address(
        ctx.resource_name("ip"), region=site.region, address_type="EXTERNAL", labels=labels
    )
    disk = gcp.compute.Disk(
        ctx.resource_name("data"),
        zone=zone(site),
        size=ctx.data_gib,
        type=str(site.options.get("disk_type", "pd-balanced")),
        labels=labels,
    )
    arch = "arm64" if ARM_TYPE_RE.match(machine_type(site)) else "amd64"
    image = str(site.options.get("image") or f"ubuntu-os-cloud/ubuntu-2404-lts-{arch}")
    metadata: dict[str, Any] = {"user-data": ctx.user_data(data_device())}
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
    )
    bucket = gcp.storage.Bucket(
        ctx.bucket_name(),
        location=(site.region or "EU").upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        labels=labels,
    )
    return {
        "ipv4": address.address,
        "url": ctx.url,
        "bucket": bucket.name,
        "instance_id": instance.id,
    }


def classify_error(text: str) -> str:
    """suspended / forbidden / transient / fatal, from a GCP or engine error message."""
    return classify_with(ERROR_SIGNATURES, text)


def plugin() -> tuple[str, str]:
    return sdk_plugin("pulumi_gcp")


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
    env = os.environ if environ is None else environ
    own = _credentials_file(site, spec_dir)
    if own is not None:
        if own.is_file():
            return True, f"credentials file {own}"
        return False, f"credentials file {own} (credentials.file of site {site.name}) does not exist"
    if env.get("GOOGLE_CREDENTIALS"):
        return True, "GOOGLE_CREDENTIALS is set"
    adc = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if adc:
        if Path(adc).is_file():
            return True, f"GOOGLE_APPLICATION_CREDENTIALS ({adc})"
        return False, f"GOOGLE_APPLICATION_CREDENTIALS points at {adc}, which does not exist"
    config_dir = Path(env.get("CLOUDSDK_CONFIG") or (home or Path.home()) / ".config" / "gcloud")
    default = config_dir / "application_default_credentials.json"
    if default.is_file():
        return True, f"application default credentials ({default})"
    return False, (
        "no GCP credentials: set credentials.file in the site (a service-account JSON), or "
        "GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`"
    )


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


def plugins() -> list[tuple[str, str]]:
    """Every plugin a site on this provider needs."""
    return [plugin()]
