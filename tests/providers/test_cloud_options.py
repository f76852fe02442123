"""Each cloud provider checks its own options; problems come out at file:line:column."""

from __future__ import annotations

import importlib

import pytest

from deplat.errors import SpecError
from deplat.spec.loader import load_text

HEAD = """\
version: 1
app: shop
services:
  web:
    image: ghcr.io/acme/shop:2.1
    ports:
      - {port: 8080, public: true}
domain:
  zone: shop.example.org
  names: [shop.example.org]
sites:
  - name: local-a
    provider: local
    role: primary
"""
LOCAL_RUN = "    local: {command: [serve]}\n"


def problems(sites: str, head: str = HEAD) -> list[str]:
    text = head.replace("    ports:\n", LOCAL_RUN + "    ports:\n", 1) + sites
    with pytest.raises(SpecError) as caught:
        load_text(text, "deplat.yaml")
    return [str(p) for p in caught.value.problems]


def ok(sites: str) -> None:
    text = HEAD.replace("    ports:\n", LOCAL_RUN + "    ports:\n", 1) + sites
    load_text(text, "deplat.yaml")


def test_aws_option_errors_carry_file_line_and_column() -> None:
    sites = """\
  - name: aws-b
    provider: aws
    role: warm
    region: eu-central
    size: huge
    options: {amy: ami-0123456789abcdef0, ssh_cidrs: [10.0.0.0/33]}
"""
    assert problems(sites) == [
        "deplat.yaml:19:13: sites[1].region: 'eu-central' is not an AWS region (e.g. eu-central-1)",
        "deplat.yaml:20:11: sites[1].size: 'huge' is neither small, medium, large nor an EC2 instance type "
        "(e.g. t3.small)",
        "deplat.yaml:21:20: sites[1].options.amy: unknown option 'amy' for aws sites (did you mean 'ami'?); "
        "known: ami, ssh_cidrs, ssh_public_key, volume_type",
        "deplat.yaml:21:55: sites[1].options.ssh_cidrs[0]: '10.0.0.0/33' is not a CIDR block "
        "(e.g. 203.0.113.0/24)",
    ]


def test_aws_zone_must_belong_to_the_region() -> None:
    sites = """\
  - name: aws-b
    provider: aws
    role: warm
    region: eu-central-1
    zone: eu-west-1a
"""
    assert problems(sites) == [
        "deplat.yaml:20:11: sites[1].zone: 'eu-west-1a' is not a zone of region eu-central-1 (e.g. eu-central-1a)"
    ]


def test_aws_refuses_xen_instance_types() -> None:
    sites = """\
  - name: aws-b
    provider: aws
    role: warm
    region: eu-central-1
    size: t2.micro
"""
    assert problems(sites) == [
        "deplat.yaml:20:11: sites[1].size: 't2.micro' is a Xen-based instance type; deplat finds the data "
        "volume by its NVMe name, so use a Nitro type (e.g. t3, m6i, m7g)"
    ]


def test_gcp_needs_a_project_and_region_formatted_zones() -> None:
    sites = """\
  - name: gcp-b
    provider: gcp
    role: warm
    region: europe-west4
    zone: europe-west4a
    options: {project: Bad_Project, disk_type: ssd}
  - name: gcp-c
    provider: gcp
    role: cold
    region: us-central1
"""
    assert problems(sites) == [
        "deplat.yaml:20:11: sites[1].zone: 'europe-west4a' is not a zone of region europe-west4 (e.g. europe-west4-a)",
        "deplat.yaml:21:24: sites[1].options.project: 'Bad_Project' is not a GCP project id (6-30 of a-z, 0-9, '-')",
        "deplat.yaml:21:48: sites[1].options.disk_type: 'ssd' is not one of pd-balanced, pd-ssd, pd-standard, "
        "hyperdisk-balanced",
        "deplat.yaml:22:5: sites[2].options: a gcp site needs options.project (the GCP project id)",
    ]


def test_hcloud_locations_have_no_zones() -> None:
    sites = """\
  - name: hz-b
    provider: hcloud
    role: warm
    region: fsn9
    zone: fsn1-dc14
"""
    assert problems(sites) == [
        "deplat.yaml:19:13: sites[1].region: 'fsn9' is not a Hetzner location; known: fsn1, nbg1, hel1, ash, hil, sin",
        "deplat.yaml:20:11: sites[1].zone: Hetzner has no availability zones: set only region (the location)",
    ]


@pytest.mark.slow
def test_hcloud_refuses_a_bootstrap_over_32_kib() -> None:
    import base64
    import random

    noise = random.Random(0)
    blobs = [base64.b64encode(noise.randbytes(1200)).decode() for _ in range(40)]  # barely compressible
    services = "".join(
        f"  svc{i}:\n    image: ghcr.io/acme/s{i}:1\n    local: {{command: [serve]}}\n"
        f"    ports: [{{port: {9000 + i}}}]\n    env: {{BLOB: '{blobs[i]}'}}\n"
        for i in range(40)
    )
    head = HEAD.replace("services:\n", "services:\n" + services, 1)
    sites = """\
  - name: hz-b
    provider: hcloud
    role: warm
    region: fsn1
"""
    found = problems(sites, head)
    assert len(found) == 1
    assert found[0].startswith("deplat.yaml:")
    assert ": sites[1]: the bootstrap for this site is " in found[0]
    assert "bytes as sent, over hcloud's user-data limit of 32768 bytes" in found[0]


def test_a_hundred_small_services_fit_every_provider_once_compressed() -> None:
    services = "".join(
        f"  svc{i}:\n    image: ghcr.io/acme/s{i}:1\n    local: {{command: [serve]}}\n"
        f"    ports: [{{port: {9000 + i}}}]\n    env: {{NAME: svc{i}}}\n"
        for i in range(100)
    )
    head = HEAD.replace("services:\n", "services:\n" + services, 1)
    text = (
        head.replace("    ports:\n", LOCAL_RUN + "    ports:\n", 1)
        + """\
  - name: aws-b
    provider: aws
    role: warm
    region: eu-west-1
  - name: hz-c
    provider: hcloud
    role: cold
    region: fsn1
"""
    )
    assert len(load_text(text, "deplat.yaml").services) == 101


def test_portable_and_native_sizes_are_accepted() -> None:
    ok(
        """\
  - name: aws-b
    provider: aws
    role: warm
    region: us-east-1
    size: m7g.large
  - name: gcp-c
    provider: gcp
    role: cold
    region: europe-west1
    zone: europe-west1-d
    size: n2d-standard-4
    options: {project: shop-standby, ssh_cidrs: ["2001:db8::/32"]}
  - name: hz-d
    provider: hcloud
    role: cold
    region: hel1
    size: large
"""
    )


@pytest.mark.parametrize(
    ("provider", "sizes"),
    [
        ("aws", ("t3.small", "t3.medium", "t3.large")),
        ("gcp", ("e2-small", "e2-medium", "e2-standard-2")),
        ("hcloud", ("cx23", "cx33", "cx43")),  # EU; ash, hil and sin get cpx22/cpx32/cpx42
    ],
)
def test_portable_sizes_map_to_native_types(provider: str, sizes: tuple[str, str, str]) -> None:

    module = importlib.import_module(f"deplat.providers.{provider}")
    assert (module.SIZES["small"], module.SIZES["medium"], module.SIZES["large"]) == sizes
