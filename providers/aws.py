"""The ``aws`` provider: one site is one EC2 instance with its data volume, static IP and backup bucket.

Only this module imports ``pulumi_aws``, and only inside ``build_site``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from deplat.providers import OptionProblems, unknown_option_problems

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

OPTIONS = ("ami", "ssh_cidrs", "ssh_public_key", "volume_type")
SIZES: dict[str, str] = {"small": "t3.small", "medium": "t3.medium", "large": "t3.large"}
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
NATIVE_SIZE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")


def validate_site(site: Site, spec: Spec) -> OptionProblems:
    problems = unknown_option_problems(site, OPTIONS)
    if site.region is None:
        problems.append(((), "an aws site needs a region, e.g. region: eu-central-1"))
    elif not REGION_RE.match(site.region):
        problems.append((("region",), f"'{site.region}' is not an AWS region (e.g. eu-central-1)"))
    if (
        site.zone is not None
        and site.region is not None
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
    ami = site.options.get("ami")
    if ami is not None and not AMI_RE.match(str(ami)):
        problems.append((("options", "ami"), f"'{ami}' is not an AMI id (ami-0123456789abcdef0)"))
    vtype = site.options.get("volume_type")
    if vtype is not None and vtype not in VOLUME_TYPES:
        problems.append((("options", "volume_type"), f"'{vtype}' is not one of {', '.join(VOLUME_TYPES)}"))
    problems += cidr_problems(site)
    return problems


def cidr_problems(site: Site) -> OptionProblems:
    """``options.ssh_cidrs``: a list of CIDR blocks allowed to reach SSH (port 22)."""
    raw = site.options.get("ssh_cidrs")
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [(("options", "ssh_cidrs"), "should be a list of CIDR blocks, e.g. [203.0.113.0/24]")]
    problems: OptionProblems = []
    for i, item in enumerate(raw):
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            problems.append(
                (("options", "ssh_cidrs", i), f"'{item}' is not a CIDR block (e.g. 203.0.113.0/24)")
            )
    return problems


def instance_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)
