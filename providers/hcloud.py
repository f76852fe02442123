"""The ``hcloud`` provider (Hetzner Cloud): one server with its volume and primary IPs.

Resources of a site (``build_site``): a firewall opening only the app's public ports (and SSH from
``options.ssh_cidrs``), static primary IPv4 and IPv6 addresses, an Ubuntu 24.04 server whose user
data is the bootstrap (gzip, base64: Hetzner accepts at most 32 KiB, checked by ``validate_site``),
a volume attached to it, all labelled ``deplat-app`` / ``deplat-site``. A site needs only the
hcloud plugin and the API token: backups go to Object Storage through restic's S3 backend
(``backups.store``), which creates its bucket itself; no bucket is made here (Object Storage has no
resource in ``pulumi_hcloud``, and making one through the AWS provider needed a second plugin and
S3 keys, and Hetzner answers S3 calls it lacks with a 501 HTML page).

Updates never replace the server for a new bootstrap or image: user data and the image are
first-boot only (``ignore_changes``; later changes go over SSH) until ``deplat up --replace-vm``.
A replacement that is really needed (another location) deletes the server first, so the primary
IPs (``primary_ip_assigned``) and the volume (``volume_already_attached``) are free for the new
one; the volume is kept when the stack is destroyed (``retain_on_delete``).

Sizes: ``small``/``medium``/``large`` are cx23/cx33/cx43 in the EU locations and cpx22/cpx32/cpx42
in ash, hil and sin: the CX line is EU-only, and cx22/cx32/cx42/cx52 can no longer be ordered
(Hetzner Cloud changelog, 2025-10-16: deprecated, orderable until 2025-12-31).

Only this module imports ``pulumi_hcloud``, and only inside ``build_site``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deplat import hetzner
from deplat.errors import ErrorClass
from deplat.providers.base import (
    Capabilities,
    ControlPlane,
    HostingProvider,
    OptionProblems,
    ProviderOptions,
    cidr_problems,
    classify_with,
    user_data_problems,
    volume_size_problems,
)

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

LOCATIONS = ("fsn1", "nbg1", "hel1", "ash", "hil", "sin")
EU_LOCATIONS = ("fsn1", "nbg1", "hel1")
# Hetzner Cloud changelog 2025-10-16 ("server types deprecated"): cx22/cx32/cx42/cx52 are
# deprecated and cannot be ordered after 2025-12-31; their successors cx23/cx33/cx43/cx53
# (Cost-Optimized) exist only in the EU locations; the Regular Performance line
# cpx12/cpx22/cpx32/cpx42/cpx52/cpx62 is offered everywhere (hetzner.com/cloud, per location).
SIZES_EU: dict[str, str] = {"small": "cx23", "medium": "cx33", "large": "cx43"}
SIZES_ELSEWHERE: dict[str, str] = {"small": "cpx22", "medium": "cpx32", "large": "cpx42"}
SIZES = SIZES_EU  # the sizes' names (the same keys in every location)
# no longer orderable -> what to order instead (the cx11..cx51 line was retired in 2024)
RETIRED_TYPES: dict[str, str] = {
    "cx11": "cx23",
    "cx21": "cx23",
    "cx31": "cx33",
    "cx41": "cx43",
    "cx51": "cx53",
    "cx22": "cx23",
    "cx32": "cx33",
    "cx42": "cx43",
    "cx52": "cx53",
}
NATIVE_SIZE_RE = re.compile(r"^c[a-z]{1,3}\d{1,3}$")
MIN_VOLUME_GIB = 10  # Hetzner volumes are 10 GiB to 10 TiB
USER_DATA_LIMIT = 32 * 1024
DEFAULT_TOKEN = "HCLOUD_TOKEN"

# The error table (one row per documented code, each citing hcloud-go's ErrorCode constants) lives
# with the Hetzner Cloud API client that the DNS backend shares: ``deplat.hetzner``.
ERROR_TABLE = hetzner.ERROR_TABLE

SUSPENSION_SIGNATURES: tuple[tuple[int | None, str], ...] = (
    (None, r"account (is|has been) (blocked|locked|suspended)"),
)


class HcloudOptions(ProviderOptions):
    image: str | None = Field(None, description="server image (default: ubuntu-24.04)")
    ssh_cidrs: list[str] | None = Field(None, description="CIDR blocks allowed to reach SSH (port 22)")
    ssh_public_key: str | None = Field(None, description="an OpenSSH public key for root")


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
                f"'{site.size}' is neither small, medium, large nor a Hetzner server type (e.g. cx23)",
            )
        )
    elif site.size in RETIRED_TYPES:
        problems.append(
            (
                ("size",),
                f"Hetzner server type '{site.size}' can no longer be ordered; use "
                f"'{RETIRED_TYPES[site.size]}' (EU) or a cpx type, or small/medium/large",
            )
        )
    elif site.size.startswith("cx") and site.region in LOCATIONS and site.region not in EU_LOCATIONS:
        problems.append(
            (
                ("size",),
                f"the CX server types are offered only in fsn1, nbg1 and hel1, not in {site.region}: "
                "use a cpx type (e.g. cpx22) or small/medium/large",
            )
        )
    problems += volume_size_problems(spec, MIN_VOLUME_GIB, "Hetzner volumes")
    problems += cidr_problems(site)
    if not problems:
        from deplat.stacks.bootstrap import pack

        problems += user_data_problems(
            site, spec, data_device("100000000"), USER_DATA_LIMIT, measure=lambda text: len(pack(text))
        )
    return problems


def server_type(site: Site) -> str:
    """The Hetzner server type a site gets: its size's type in its location, or the type it names."""
    sizes = SIZES_EU if site.region in EU_LOCATIONS else SIZES_ELSEWHERE
    return sizes.get(site.size, site.size)


def token_name(site: Site) -> str:
    return site.credentials.secret or DEFAULT_TOKEN


def secret_names(site: Site) -> list[str]:
    """The secrets a Hetzner site itself needs (besides the services'): the API token."""
    return [token_name(site)]


def data_device(volume_id: str) -> str:
    """Provider bit: a Hetzner volume as the server sees it, named by the volume's id."""
    return f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"


def build_site(ctx: SiteContext) -> dict[str, Any]:
    """The site's Hetzner resources; returns its outputs (see ``deplat.stacks.site``)."""
    import pulumi
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
        opts=pulumi.ResourceOptions(retain_on_delete=ctx.retain_data),
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
        # user data (ForceNew) and the image are first-boot only (until `up --replace-vm`); a real
        # replacement deletes the old server first, freeing its primary IPs and volume for the new one
        opts=pulumi.ResourceOptions(
            ignore_changes=ctx.first_boot_only(["userData", "image"]), delete_before_replace=True
        ),
    )
    hcloud.VolumeAttachment(
        ctx.resource_name("data-attachment"),
        server_id=server.id.apply(int),
        volume_id=volume.id.apply(int),
        automount=False,
        opts=pulumi.ResourceOptions(delete_before_replace=True),
    )
    return {
        "ipv4": ipv4.ip_address,
        "ipv6": server.ipv6_address,
        "url": ctx.url,
        "instance_id": server.id,
    }


def classify_error(text: str) -> ErrorClass:
    """suspended / forbidden / transient / fatal, from a Hetzner or engine error message."""
    return classify_with(ERROR_TABLE, text)


def _lookup(name: str, secrets: SecretStore | None, env: Mapping[str, str]) -> str | None:
    value = secrets.get(name) if secrets is not None else None
    return value or env.get(name) or None


def check_credentials(
    site: Site,
    secrets: SecretStore | None = None,
    *,
    spec_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[bool, str]:
    """Is the Hetzner API token set? Looks it up only; no network call."""
    env = os.environ if environ is None else environ
    name = token_name(site)
    if _lookup(name, secrets, env) is None:
        return False, f"not set: {name} (Hetzner Cloud API token)"
    return True, f"{name} is set"


def provider_config(
    site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
) -> dict[str, tuple[str, bool]]:
    """Pulumi stack config for the site's Hetzner provider: key -> (value, is_secret)."""
    token = _lookup(token_name(site), secrets, os.environ)
    return {"hcloud:token": (token, True)} if token else {}


def control_plane_check(
    site: Site, spec: Spec | None = None, secrets: SecretStore | None = None, timeout: float = 5.0
) -> ControlPlane:
    """Does the Hetzner Cloud API still accept the site's token? ``(ok, reason, error class)``.

    One read-only call through Hetzner's own client (``deplat.hetzner``): ``servers.get_list(
    per_page=1)`` (``GET {HCLOUD_ENDPOINT}/servers?per_page=1``, the endpoint variable the hcloud CLI
    and the Terraform/Pulumi provider honour) with the token named by ``credentials.secret``
    (default ``HCLOUD_TOKEN``), ended by ``timeout``. No token: ``(False, "no credentials: ...",
    "forbidden")`` without a call. An error is classified from the client's ``APIException`` code
    (``deplat.hetzner.error_class``); a connection failure or timeout is ``transient``. The token
    never appears in a reason.
    """
    import requests
    from hcloud import APIException

    from deplat.dns.base import Deadline

    name = token_name(site)
    token = _lookup(name, secrets, os.environ)
    if token is None:
        return False, f"no credentials: {name} is not set (Hetzner Cloud API token)", ErrorClass.FORBIDDEN
    endpoint = os.environ.get("HCLOUD_ENDPOINT") or hetzner.DEFAULT_ENDPOINT
    try:
        hetzner.client(token, endpoint, Deadline(timeout), timeout).servers.get_list(per_page=1)
    except APIException as exc:
        status = f"{exc.code}: " if isinstance(exc.code, int) else ""
        reason = f"Hetzner Cloud API answered {status}{hetzner.describe(exc)}"
        return False, reason.replace(token, "***"), hetzner.error_class(exc.code, str(exc.message))
    except (requests.RequestException, hetzner.OutOfTime) as exc:
        reason = f"Hetzner Cloud API did not answer ({type(exc).__name__}): {exc}"
        return False, reason.replace(token, "***"), ErrorClass.TRANSIENT
    except (KeyError, TypeError, ValueError) as exc:  # a 200 that is not the API's JSON (a proxy's page)
        reason = f"{endpoint} did not answer as the Hetzner Cloud API ({type(exc).__name__}: {exc})"
        return False, reason.replace(token, "***"), ErrorClass.FATAL
    return True, f"Hetzner Cloud API accepts {name}", None


def mock_outputs(typ: str, name: str, n: int) -> dict[str, Any]:
    """What the Hetzner Cloud API and Object Storage would compute, as placeholders."""
    if typ == "hcloud:index/primaryIp:PrimaryIp":
        return {"ipAddress": f"2001:db8::{n:x}" if "ipv6" in name else f"192.0.2.{n % 250 + 1}"}
    if typ == "hcloud:index/server:Server":
        return {"ipv4Address": f"192.0.2.{n % 250 + 1}", "ipv6Address": f"2001:db8::{n:x}"}
    return {}


def plan_notes(site: Site, spec: Spec) -> tuple[dict[str, Any], list[str]]:
    """The server type chosen, as a note of the site's offline plan."""
    chosen = server_type(site)
    why = f"{site.size} in {site.region}" if site.size in SIZES else "as named in the spec"
    return {}, [f"server type {chosen} ({why})"]


class HcloudProvider(HostingProvider):
    name = "hcloud"
    title = "Hetzner Cloud"
    capabilities = Capabilities(runs_locally=False, pulumi_program=True, has_vm=True, object_storage=False)
    Options = HcloudOptions
    extra = "hcloud"
    sdk_modules = ("pulumi", "pulumi_hcloud")
    pulumi_sdk = "pulumi_hcloud"
    RESOURCE_TYPES = {"vm": "hcloud:index/server:Server", "data volume": "hcloud:index/volume:Volume"}
    ERROR_TABLE = ERROR_TABLE
    SUSPENSION_SIGNATURES = SUSPENSION_SIGNATURES

    # the hooks are this module's functions (mypy checks each against HostingProvider's signature)
    site_problems = staticmethod(validate_site)
    secret_names = staticmethod(secret_names)
    plan_notes = staticmethod(plan_notes)
    check_credentials = staticmethod(check_credentials)
    control_plane_check = staticmethod(control_plane_check)
    build_site = staticmethod(build_site)
    provider_config = staticmethod(provider_config)
    mock_outputs = staticmethod(mock_outputs)


provider = HcloudProvider()
