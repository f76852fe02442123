"""Shared helpers: a small cloud spec, and running one site's program under Pulumi's mocks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pulumi  # loaded up front: plans then run in this process, reusing the SDK imports
import pytest

from deplat.spec.loader import load_text
from deplat.spec.model import Spec

CLOUD_SPEC = """\
version: 1
app: shop
services:
  web:
    image: ghcr.io/acme/shop:2.1
    command: [/app/serve, --port, "8080"]
    args: [--verbose]
    ports:
      - {port: 8080, public: true}
      - {port: 9090}
    env: {MODE: prod}
    secrets: [SHOP_DB_PASSWORD]
    volumes:
      - {name: data, path: /var/lib/shop, size: 20}
    health: {port: 8080, path: /healthz}
  voice:
    image: ghcr.io/acme/voice:1
    ports:
      - {port: 5060, public: true, protocol: udp}
    volumes:
      - {name: media, path: /media, size: 5}
domain:
  zone: shop.example.org
  names: [shop.example.org, www.shop.example.org]
sites:
  - name: aws-a
    provider: aws
    role: primary
    region: eu-west-1
    zone: eu-west-1b
    size: medium
  - name: gcp-b
    provider: gcp
    role: warm
    region: us-central1
    options: {project: shop-standby}
  - name: hz-c
    provider: hcloud
    role: cold
    region: nbg1
    size: cpx21
"""

SSH_CIDRS = '[203.0.113.0/24, "2001:db8:1::/48"]'


def with_ssh(site: str) -> str:
    """CLOUD_SPEC with ``options.ssh_cidrs`` on ``site``."""
    start = CLOUD_SPEC.index(f"  - name: {site}\n")
    end = CLOUD_SPEC.find("  - name:", start + 1)
    end = len(CLOUD_SPEC) if end == -1 else end
    block = CLOUD_SPEC[start:end]
    if "options: {" in block:
        block = block.replace("options: {", f"options: {{ssh_cidrs: {SSH_CIDRS}, ")
    else:
        block += f"    options: {{ssh_cidrs: {SSH_CIDRS}}}\n"
    return CLOUD_SPEC[:start] + block + CLOUD_SPEC[end:]


def cloud_spec(text: str = CLOUD_SPEC) -> Spec:
    return load_text(text, "deplat.yaml")


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]  # wire form, secrets still wrapped
    state: dict[str, Any] = field(default_factory=dict)  # what the mock answered: inputs and outputs


@dataclass
class Run:
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Recorded:
        found = self.of(typ)
        assert len(found) == 1, f"{len(found)} resources of type {typ}"
        return found[0]

    @property
    def types(self) -> list[str]:
        return sorted(r.typ for r in self.resources)


@pytest.fixture(autouse=True)
def _usable_event_loop() -> None:
    """Pulumi's mocks run on the thread's current event loop, which a test elsewhere may have closed
    or unset: each test here starts with a usable one, whichever tests ran before (the fast lane
    skips the ones that used to leave one behind)."""
    try:
        usable = not asyncio.get_event_loop_policy().get_event_loop().is_closed()
    except RuntimeError:
        usable = False
    if not usable:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_site(spec: Spec, site_name: str, secrets: Any = None, *, distinct: bool = False) -> Run:
    """Run the site's program under a fresh set of mocks; the raw inputs of every resource.

    Every resource answers with made-up addresses (``publicIp``, ``address``, ``ipAddress``...); with
    ``distinct`` each resource's are its own, so that a test can tell which resource an output is
    read from."""
    import pulumi

    from deplat.plan import _ensure_event_loop, mock_id
    from deplat.stacks.site import build

    _ensure_event_loop()  # an earlier asyncio.run in this thread may have closed the loop
    run = Run()

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            n = 4 * len(run.resources) + 10 if distinct else 0
            ips = (
                [f"192.0.2.{n + i}" for i in (1, 2, 3)]
                if distinct
                else ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
            )
            extra = {"publicIp": ips[0], "address": ips[1], "ipAddress": ips[2]}
            extra |= {
                "bucket": args.name + "-x",
                "name": args.name + "-x",
                "ipv6Address": f"2001:db8::{n + 1:x}",
            }
            state = {**extra, **args.inputs}
            run.resources.append(Recorded(args.typ, args.name, dict(args.inputs), state))
            return str(mock_id(args.typ, args.name)), state

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return {"id": "ami-0123456789abcdef0"}

    pulumi.runtime.set_mocks(Mocks(), project=spec.app, stack=site_name, preview=False)

    @pulumi.runtime.test
    def go() -> Any:
        outputs = build(spec, spec.site(site_name), secrets)
        return pulumi.Output.all(**outputs).apply(run.outputs.update)

    go()
    return run


def is_secret(value: Any) -> bool:
    from pulumi.runtime import rpc

    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


@pytest.fixture
def spec() -> Spec:
    return cloud_spec()
