"""The ``gcp`` provider: one site is one Compute Engine VM with its data disk, static IP and bucket.

Only this module imports ``pulumi_gcp``, and only inside ``build_site``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deplat.providers import OptionProblems, unknown_option_problems
from deplat.providers.aws import cidr_problems

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

OPTIONS = ("project", "network", "image", "disk_type", "ssh_cidrs", "ssh_public_key")
SIZES: dict[str, str] = {"small": "e2-small", "medium": "e2-medium", "large": "e2-standard-2"}
DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d{1,2}$")
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
NATIVE_SIZE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")


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
    return problems


def machine_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)
