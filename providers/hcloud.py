"""The ``hcloud`` provider (Hetzner Cloud): one server with its volume, primary IP and bucket.

Only this module imports ``pulumi_hcloud``, and only inside ``build_site``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deplat.providers import OptionProblems, unknown_option_problems
from deplat.providers.aws import cidr_problems

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

OPTIONS = ("image", "ssh_cidrs", "ssh_public_key", "s3_access_key_secret", "s3_secret_key_secret")
SIZES: dict[str, str] = {"small": "cx22", "medium": "cx32", "large": "cx42"}
LOCATIONS = ("fsn1", "nbg1", "hel1", "ash", "hil", "sin")
NATIVE_SIZE_RE = re.compile(r"^c[a-z]{1,3}\d{2,3}$")
USER_DATA_LIMIT = 32 * 1024


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
    problems += cidr_problems(site)
    return problems


def server_type(site: Site) -> str:
    return SIZES.get(site.size, site.size)
