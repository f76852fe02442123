"""The ``aws`` provider: one site is one EC2 instance with its data volume, static IP and backup bucket.

Resources of a site (``build_site``): a security group opening only the app's public ports (and SSH
from ``options.ssh_cidrs``), an Ubuntu 24.04 instance (IMDSv2 only, one hop, so containers cannot
read its user data) whose user data is the bootstrap (gzip, base64), an EBS data volume attached
as ``/dev/sdf``, an Elastic IP, and an S3 bucket with versioning and public access blocked.
Everything is tagged ``deplat-app`` / ``deplat-site``. Instance types must be Nitro-based (t3 and
newer): the bootstrap finds the volume by its NVMe name. No IPv6: the default VPC has none.

Updates never replace the instance for a new bootstrap or a newer AMI: user data and the AMI
resolved at the first ``up`` are first-boot only (``ignore_changes``, ``user_data_replace_on_change``
off; later changes go over SSH) until the operator asks for a new VM (``deplat up --replace-vm``).
A replacement that is really needed deletes the old instance first (the attachment stops it and
detaches the volume, the Elastic IP follows the new instance), so it never fails with
``VolumeInUse``; the EBS volume and the bucket are kept on destroy.

Options: ``ami`` (default: the newest Canonical Ubuntu 24.04 image), ``ssh_cidrs``,
``ssh_public_key``, ``volume_type`` (gp3). Only this module imports ``pulumi_aws``, and only inside
``build_site``. The control-plane check's EC2 client, the credentials lookup and the reading of an
EC2 error are ``deplat.aws``'s, which the Route 53 backend shares.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deplat import aws as aws_api
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
)

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

SIZES: dict[str, str] = {"small": "t3.small", "medium": "t3.medium", "large": "t3.large"}
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
NATIVE_SIZE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
# Xen-based families expose EBS as /dev/xvd*, not as NVMe named by volume id: the bootstrap needs Nitro.
XEN_TYPE_RE = re.compile(r"^(t1|t2|m1|m2|m3|m4|c1|c3|c4|r3|r4|i2|d2|x1|x1e|p2|p3|g3|f1|h1)\.")
ARM_TYPE_RE = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")  # Graviton: t4g, m7g, c7gn, r8g ...
UBUNTU_OWNER = "099720109477"  # Canonical
DATA_DEVICE_NAME = "/dev/sdf"
USER_DATA_LIMIT = 16 * 1024  # EC2: 16 KB of user data before base64 (here: the gzip bytes)

_EC2_ERRORS = "EC2 API error codes, docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html"
_EC2_COMMON = _EC2_ERRORS + " (common client errors: every EC2 action, DescribeRegions too, can return them)"
_S3_ERRORS = "S3 error responses, docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html"
_STS_ERRORS = "STS/IAM error codes (InvalidClientTokenId, ExpiredToken, AccessDenied)"
_GO_SDK = "aws-sdk-go-v2 and the Pulumi AWS provider's transport errors (net/http, crypto/tls)"
# (regex over a provider or engine error, class, source); the first match wins, so suspension comes
# first. "AccountSuspended" is no EC2 code (SES's AccountSuspendedException means paused sending):
# a suspended AWS account answers EC2 with Blocked, S3 with AllAccessDisabled.
ERROR_TABLE: tuple[ErrorRow, ...] = (
    # "Your account is currently blocked. Contact AWS Support"
    ErrorRow(
        r"\bBlocked\b: |currently blocked and not recognized as a valid account",
        ErrorClass.SUSPENDED,
        _EC2_COMMON,
    ),
    ErrorRow(
        r"AllAccessDisabled|All access to this object has been disabled", ErrorClass.SUSPENDED, _S3_ERRORS
    ),
    # "You are not authorized to use the requested service. Ensure that you have subscribed to the
    # service... If you are new to AWS, your account might take some time to be activated"; also a
    # Marketplace AMI whose terms were not accepted ("In order to use this AWS Marketplace product
    # you need to accept terms and subscribe"): a subscription to fix, not a suspension
    ErrorRow(r"\bOptInRequired\b", ErrorClass.FORBIDDEN, _EC2_COMMON),
    # "Your account is pending verification": a new account, not yet usable
    ErrorRow(r"\bPendingVerification\b", ErrorClass.FORBIDDEN, _EC2_COMMON),
    ErrorRow(
        r"\bUnauthorizedOperation\b|\bAuthFailure\b|InvalidClientTokenId|SignatureDoesNotMatch",
        ErrorClass.FORBIDDEN,
        _EC2_COMMON,
    ),
    ErrorRow(
        r"\bAccessDenied(Exception)?\b|ExpiredToken|no valid credential sources|NoCredentialProviders",
        ErrorClass.FORBIDDEN,
        _STS_ERRORS + "; Pulumi AWS provider's credential errors",
    ),
    ErrorRow(
        r"RequestLimitExceeded|\bThrottling(Exception)?\b|TooManyRequests|\bSlowDown\b",
        ErrorClass.TRANSIENT,
        _EC2_COMMON,
    ),
    # "There is not enough capacity to fulfill your request" (instance, address, volume) and an
    # instance type the zone does not offer: another zone or region may have it
    ErrorRow(
        r"Insufficient(Instance|Address|Volume|Host)Capacity"
        r"|\bUnsupported\b: .{0,80}(instance type|availability zone)",
        ErrorClass.CAPACITY,
        _EC2_ERRORS,
    ),
    # (VolumeInUse, a create-before-delete replacement of the instance holding the data volume,
    # stays fatal, the default: build_site replaces delete-first so it does not happen)
    ErrorRow(
        r"\bInternalError\b|ServiceUnavailable|\bUnavailable\b|RequestTimeout",
        ErrorClass.TRANSIENT,
        _EC2_ERRORS,
    ),
    ErrorRow(
        r"StatusCode: 5\d\d|connection reset|i/o timeout|TLS handshake timeout|no such host",
        ErrorClass.TRANSIENT,
        _GO_SDK,
    ),
)

# (HTTP status or None, regex on the body): an answer meaning "AWS suspended this account".
SUSPENSION_SIGNATURES: tuple[tuple[int | None, str], ...] = (
    (403, r"<Code>AllAccessDisabled</Code>|All access to this object has been disabled"),
    (None, r"currently blocked and not recognized as a valid account"),
    (None, r"\bAccountSuspended\b"),
)


class AwsOptions(ProviderOptions):
    ami: str | None = Field(None, description="AMI id (default: the newest Canonical Ubuntu 24.04 image)")
    ssh_cidrs: list[str] | None = Field(None, description="CIDR blocks allowed to reach SSH (port 22)")
    ssh_public_key: str | None = Field(None, description="an OpenSSH public key for the VM's default user")
    volume_type: str | None = Field(None, description="EBS volume type: " + ", ".join(VOLUME_TYPES))


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    """AWS's own checks of a site (its options' names and types are checked by ``AwsOptions``)."""
    problems: OptionProblems = []
    if site.region is None:
        problems.append(((), "an aws site needs a region, e.g. region: eu-central-1"))
    elif not REGION_RE.match(site.region):
        problems.append((("region",), f"'{site.region}' is not an AWS region (e.g. eu-central-1)"))
    if (
        site.zone is not None
        and site.region is not None
        and REGION_RE.match(site.region)
        and not re.fullmatch(re.escape(site.region) + r"[a-z]", site.zone)
    ):
        problems.append(
            (("zone",), f"'{site.zone}' is not a zone of region {site.region} (e.g. {site.region}a)")
        )
    if site.size not in SIZES and not NATIVE_SIZE_RE.match(site.size):
        problems.append(
            (
                ("size",),
                f"'{site.size}' is neither small, medium, large nor an EC2 instance type (e.g. t3.small)",
            )
        )
    if XEN_TYPE_RE.match(site.size):
        problems.append(
            (
                ("size",),
                f"'{site.size}' is a Xen-based instance type; deplat finds the data volume by its NVMe "
                "name, so use a Nitro type (e.g. t3, m6i, m7g)",
            )
        )
    ami = site.options.get("ami")
    if ami is not None and not AMI_RE.match(str(ami)):
        problems.append((("options", "ami"), f"'{ami}' is not an AMI id (ami-0123456789abcdef0)"))
    vtype = site.options.get("volume_type")
    if vtype is not None and vtype not in VOLUME_TYPES:
        problems.append((("options", "volume_type"), f"'{vtype}' is not one of {', '.join(VOLUME_TYPES)}"))
    problems += cidr_problems(site)
    if not problems:
        problems += user_data_problems(
            site, spec, data_device("vol-0123456789abcdef0"), USER_DATA_LIMIT, measure=_gzip_bytes
        )
    return problems


def _gzip_bytes(text: str) -> int:
    from deplat.stacks.bootstrap import pack

    return len(pack(text)) * 3 // 4  # base64 carries 3 bytes in 4 characters


def instance_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)


def data_device(volume_id: str) -> str:
    """Provider bit: the data volume as the instance sees it (Nitro exposes EBS as NVMe, named by id)."""
    return f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"


def _ami(ctx: SiteContext) -> Any:
    import pulumi_aws as aws

    if ctx.site.options.get("ami"):
        return str(ctx.site.options["ami"])
    arch = "arm64" if ARM_TYPE_RE.match(instance_type(ctx.site)) else "amd64"
    image = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[UBUNTU_OWNER],
        filters=[
            aws.ec2.GetAmiFilterArgs(
                name="name", values=[f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*"]
            ),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
        ],
    )
    return image.id


def build_site(ctx: SiteContext) -> dict[str, Any]:
    """The site's AWS resources; returns its outputs (see ``deplat.stacks.site``)."""
    import pulumi
    import pulumi_aws as aws

    site = ctx.site
    zone = site.zone or f"{site.region}a"
    tags = {**ctx.labels, "Name": f"{ctx.app}-{site.name}"}
    everyone_v4, everyone_v6 = ["0.0.0.0/0"], ["::/0"]
    ingress = [
        aws.ec2.SecurityGroupIngressArgs(
            protocol=proto,
            from_port=port,
            to_port=port,
            description=f"{ctx.app} public port",
            cidr_blocks=everyone_v4,
            ipv6_cidr_blocks=everyone_v6,
        )
        for port, proto in ctx.public_ports
    ]
    v4 = [c for c in ctx.ssh_cidrs if ":" not in c]
    v6 = [c for c in ctx.ssh_cidrs if ":" in c]
    if ctx.ssh_cidrs:
        ingress.append(
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=22,
                to_port=22,
                description="ssh",
                cidr_blocks=v4,
                ipv6_cidr_blocks=v6,
            )
        )
    firewall = aws.ec2.SecurityGroup(
        ctx.resource_name("firewall"),
        description=f"deplat {ctx.app} {site.name}: public ports only",
        ingress=ingress,
        egress=[
            aws.ec2.SecurityGroupEgressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=everyone_v4, ipv6_cidr_blocks=everyone_v6
            )
        ],
        tags=tags,
    )
    volume = aws.ebs.Volume(
        ctx.resource_name("data"),
        availability_zone=zone,
        size=ctx.data_gib,
        type=str(site.options.get("volume_type", "gp3")),
        tags=tags,
        opts=pulumi.ResourceOptions(retain_on_delete=ctx.retain_data),
    )
    key_name = None
    if ctx.ssh_public_key:
        key = aws.ec2.KeyPair(
            ctx.resource_name("ssh"),
            key_name=f"deplat-{ctx.app}-{site.name}",
            public_key=ctx.ssh_public_key,
            tags=tags,
        )
        key_name = key.key_name
    instance = aws.ec2.Instance(
        ctx.resource_name("vm"),
        ami=_ami(ctx),
        instance_type=instance_type(site),
        availability_zone=zone,
        vpc_security_group_ids=[firewall.id],
        key_name=key_name,
        user_data_base64=ctx.user_data(volume.id.apply(data_device), packed=True),
        # user data is first-boot only (later changes go over SSH) and the AMI resolved at the first
        # `up` is kept: either would otherwise replace the instance, and a create-before-delete
        # replacement fails with VolumeInUse. A real replacement deletes the old instance first.
        user_data_replace_on_change=False,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
            http_tokens="required", http_put_response_hop_limit=1, http_endpoint="enabled"
        ),
        tags=tags,
        volume_tags=tags,
        opts=pulumi.ResourceOptions(
            ignore_changes=ctx.first_boot_only(["userDataBase64", "ami"]), delete_before_replace=True
        ),
    )
    aws.ec2.VolumeAttachment(
        ctx.resource_name("data-attachment"),
        device_name=DATA_DEVICE_NAME,
        instance_id=instance.id,
        volume_id=volume.id,
        stop_instance_before_detaching=True,  # a clean file system when the volume moves
        opts=pulumi.ResourceOptions(delete_before_replace=True),
    )
    address = aws.ec2.Eip(ctx.resource_name("ip"), domain="vpc", instance=instance.id, tags=tags)
    bucket = aws.s3.Bucket(
        ctx.bucket_name(),
        tags=tags,
        force_destroy=ctx.force_destroy(),
        opts=pulumi.ResourceOptions(retain_on_delete=ctx.retain_data),
    )
    aws.s3.BucketVersioning(
        ctx.resource_name("backups-versioning"),
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
    )
    aws.s3.BucketPublicAccessBlock(
        ctx.resource_name("backups-private"),
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    return {
        "ipv4": address.public_ip,
        "url": ctx.url,
        "bucket": bucket.bucket,
        "instance_id": instance.id,
    }


def classify_error(text: str) -> ErrorClass:
    """suspended / forbidden / transient / fatal, from an AWS or engine error message."""
    return classify_with(ERROR_TABLE, text)


def check_credentials(
    site: Site,
    secrets: SecretStore | None = None,
    *,
    spec_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[bool, str]:
    """Are AWS credentials available for ``site``? Looks at env and ~/.aws only; no network call."""
    return aws_api.find_credentials(site.credentials.profile, environ, home)


def provider_config(
    site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
) -> dict[str, tuple[str, bool]]:
    """Pulumi stack config for the site's AWS provider: key -> (value, is_secret)."""
    config: dict[str, tuple[str, bool]] = {}
    if site.region:
        config["aws:region"] = (site.region, False)
    if site.credentials.profile:
        config["aws:profile"] = (site.credentials.profile, False)
    return config


# ``control_plane_check``: credentials that EC2 still accepts. STS GetCallerIdentity answers even for a
# suspended account, so the check asks EC2 itself (DescribeRegions for the site's region: read-only,
# free, one small answer). DescribeRegions is enough to see a blocked account: the EC2 API reference
# lists ``Blocked`` among the common client errors that every EC2 action can return (errors-overview).
# The client and the error reading: ``deplat.aws``, shared with the Route 53 backend (endpoint: boto3's
# own ``AWS_ENDPOINT_URL_EC2`` / ``AWS_ENDPOINT_URL``).
CONTROL_PLANE_DEFAULT_REGION = "us-east-1"


def _ec2_client(profile: str | None, region: str, timeout: float) -> Any:
    """An EC2 client for one check: one attempt, ``timeout`` to connect and to read; reused while
    nothing it depends on changed (``deplat.aws.client``)."""
    return aws_api.client("ec2", aws_api.Settings(region=region, timeout=timeout, profile=profile))


def control_plane_check(
    site: Site, spec: Spec | None = None, secrets: SecretStore | None = None, timeout: float = 5.0
) -> ControlPlane:
    """Does EC2 still accept the site's credentials? ``(ok, reason, error class)``; one API call.

    Credentials as for Pulumi: ``credentials.profile``, else the standard AWS chain (env, profiles).
    None at all (``check_credentials`` fails): ``(False, "no credentials: ...", "forbidden")`` without
    a call. An AWS error is classified by ``classify_error`` (suspended / forbidden / transient /
    fatal); a connection failure or timeout is ``transient``. No reason carries a key.
    """
    found, why = check_credentials(site, secrets)
    if not found:
        return False, f"no credentials: {why}", ErrorClass.FORBIDDEN
    import botocore.exceptions as bce

    region = site.region or os.environ.get("AWS_REGION") or CONTROL_PLANE_DEFAULT_REGION
    try:
        ec2 = _ec2_client(site.credentials.profile or None, region, timeout)
        ec2.describe_regions(RegionNames=[region])
    except bce.ClientError as exc:
        code, message, status = aws_api.answer_of(exc)
        kind = status_class(classify_error(f"{code}: {message}"), status)
        return False, f"EC2 answered {status} {code}: {message}", kind
    except (bce.NoCredentialsError, bce.PartialCredentialsError, bce.ProfileNotFound) as exc:
        return False, f"no credentials: {exc}", ErrorClass.FORBIDDEN
    except (bce.ConnectionError, bce.HTTPClientError) as exc:
        return False, f"EC2 did not answer ({type(exc).__name__}): {exc}", ErrorClass.TRANSIENT
    except bce.BotoCoreError as exc:
        return False, f"{type(exc).__name__}: {exc}", classify_error(str(exc))
    return True, f"EC2 accepts the credentials (region {region})", None


def mock_outputs(typ: str, name: str, n: int) -> dict[str, Any]:
    """What EC2 and S3 would compute, as placeholders (documentation-range addresses)."""
    if typ == "aws:ec2/eip:Eip":
        return {"publicIp": f"192.0.2.{n % 250 + 1}", "allocationId": f"eipalloc-{n:017x}"}
    if typ == "aws:s3/bucket:Bucket":
        return {"bucket": f"{name}-{n:07x}", "arn": f"arn:aws:s3:::{name}-{n:07x}"}
    if typ == "aws:ec2/keyPair:KeyPair":
        return {"keyName": f"{name}-{n:07x}"}
    return {}


def mock_call(token: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """In an offline plan, the newest AMI: its name pattern stands in for its id."""
    if token == "aws:ec2/getAmi:getAmi":
        filters = args.get("filters") or [{}]
        pattern = (filters[0].get("values") or ["an image"])[0]
        return {"id": f"<newest {pattern}>", "imageId": f"<newest {pattern}>"}
    return {}


class AwsProvider(HostingProvider):
    name = "aws"
    title = "Amazon Web Services (EC2)"
    capabilities = Capabilities(runs_locally=False, pulumi_program=True, has_vm=True, object_storage=True)
    Options = AwsOptions
    extra = "aws"
    sdk_modules = ("pulumi", "pulumi_aws", "boto3")
    pulumi_sdk = "pulumi_aws"
    RESOURCE_TYPES = {
        "vm": "aws:ec2/instance:Instance",
        "data volume": "aws:ebs/volume:Volume",
        "backup bucket": "aws:s3/bucket:Bucket",
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
    mock_call = staticmethod(mock_call)


provider = AwsProvider()
