"""Updates never replace a stateful VM, and data outlives the site (under Pulumi's mocks).

Pulumi replaces create-before-delete by default: a ForceNew change on a VM with an attached volume
or a primary IP fails on a real account (AWS ``VolumeInUse``, Hetzner ``primary_ip_assigned`` /
``volume_already_attached``), and GCP changes metadata in place where cloud-init never re-runs.
So: user data and the resolved image are first-boot only (``ignore_changes``), the VM is
delete-before-replace where a replacement is really needed, and data volumes are retained.

The mocks cannot plan a diff, so the tests run a site's program twice (before and after a change
to an env value, an image tag or the AMI the cloud resolves) and check that every input that
differs between the two runs on the VM, its volume and its address is one the resource ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest

from deplat.spec.model import Spec
from tests.stacks.conftest import CLOUD_SPEC, cloud_spec, unwrap

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SITES = {"aws": "aws-a", "gcp": "gcp-b", "hcloud": "hz-c"}
VM = {
    "aws": "aws:ec2/instance:Instance",
    "gcp": "gcp:compute/instance:Instance",
    "hcloud": "hcloud:index/server:Server",
}
VOLUME = {
    "aws": "aws:ebs/volume:Volume",
    "gcp": "gcp:compute/disk:Disk",
    "hcloud": "hcloud:index/volume:Volume",
}
ADDRESS = {
    "aws": ["aws:ec2/eip:Eip"],
    "gcp": ["gcp:compute/address:Address"],
    "hcloud": ["hcloud:index/primaryIp:PrimaryIp"],
}


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    opts: pulumi.ResourceOptions


@dataclass
class Program:
    resources: list[Registered] = field(default_factory=list)

    def of(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Registered:
        found = self.of(typ)
        assert len(found) == 1, f"{len(found)} resources of type {typ}"
        return found[0]

    def by_name(self) -> dict[str, Registered]:
        return {r.name: r for r in self.resources}


def run_program(spec: Spec, site_name: str, ami: str = "ami-0123456789abcdef0", **flags: bool) -> Program:
    """The site's program under mocks, with every resource's inputs AND resource options."""
    from deplat.plan import _ensure_event_loop, mock_id
    from deplat.stacks.site import build

    _ensure_event_loop()  # an earlier asyncio.run in this thread may have closed the loop
    program = Program()
    options: dict[str, pulumi.ResourceOptions] = {}

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            program.resources.append(
                Registered(
                    args.typ, args.name, dict(args.inputs), options.get(args.name, pulumi.ResourceOptions())
                )
            )
            extra = {"publicIp": "192.0.2.1", "address": "192.0.2.2", "ipAddress": "192.0.2.3"}
            extra |= {"bucket": args.name + "-x", "name": args.name + "-x", "ipv6Address": "2001:db8::1"}
            return str(mock_id(args.typ, args.name)), {**extra, **args.inputs}

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return {"id": ami}

    pulumi.runtime.set_mocks(Mocks(), project=spec.app, stack=site_name, preview=False)

    def remember(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = args.opts

    @pulumi.runtime.test
    def go() -> Any:
        pulumi.runtime.register_stack_transformation(remember)
        outputs = build(spec, spec.site(site_name), None, **flags)
        return pulumi.Output.all(**outputs)

    go()
    return program


def _differing(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Property paths (wire names, as ``ignore_changes`` takes them) whose values differ; a map is
    looked into one level (``metadata["user-data"]``), a list of one object too
    (``bootDisk.initializeParams.image`` stays whole: it is compared as its top key)."""
    paths = set()
    for key in before.keys() | after.keys():
        old, new = unwrap(before.get(key)), unwrap(after.get(key))  # a map holding a secret is secret whole
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and key == "metadata":
            paths |= {f'{key}["{sub}"]' for sub in old.keys() | new.keys() if old.get(sub) != new.get(sub)}
        else:
            paths.add(key)
    return paths


def _ignored(opts: pulumi.ResourceOptions) -> set[str]:
    """What ``ignore_changes`` covers, as top-level keys and as the paths given."""
    given = set(opts.ignore_changes or [])
    return given | {path.split(".")[0] for path in given if "[" not in path}


def _changed_spec(change: str) -> Spec:
    if change == "env":
        return cloud_spec(CLOUD_SPEC.replace("env: {MODE: prod}", "env: {MODE: staging}"))
    if change == "image":
        return cloud_spec(CLOUD_SPEC.replace("ghcr.io/acme/shop:2.1", "ghcr.io/acme/shop:2.2"))
    return cloud_spec()


@pytest.mark.slow
@pytest.mark.parametrize("change", ["env", "image", "ami"])
@pytest.mark.parametrize("provider", SITES)
def test_a_changed_bootstrap_or_image_replaces_nothing_stateful(provider: str, change: str) -> None:
    before = run_program(cloud_spec(), SITES[provider])
    after = run_program(
        _changed_spec(change),
        SITES[provider],
        ami="ami-0fedcba9876543210" if change == "ami" else "ami-0123456789abcdef0",
    )
    new = after.by_name()
    for typ in [VM[provider], VOLUME[provider], *ADDRESS[provider]]:
        for old in before.of(typ):
            changed = _differing(old.inputs, new[old.name].inputs)
            ignored = _ignored(new[old.name].opts)
            assert changed <= ignored, f"{typ} {old.name}: {sorted(changed - ignored)} would change"
    if change in ("env", "image"):
        assert _differing(before.one(VM[provider]).inputs, after.one(VM[provider]).inputs), (
            "the change should reach the VM's user data (then ignored), else the test tests nothing"
        )


@pytest.mark.parametrize("provider", SITES)
def test_the_vm_is_replaced_delete_first_and_its_data_volume_is_retained(provider: str) -> None:
    program = run_program(cloud_spec(), SITES[provider])
    assert program.one(VM[provider]).opts.delete_before_replace is True
    assert program.one(VOLUME[provider]).opts.retain_on_delete is True


def test_aws_never_replaces_the_instance_for_new_user_data() -> None:
    vm = run_program(cloud_spec(), "aws-a").one(VM["aws"])
    assert not vm.inputs.get("userDataReplaceOnChange")


BUCKET = {"aws": "aws:s3/bucket:Bucket", "gcp": "gcp:storage/bucket:Bucket"}


@pytest.mark.parametrize("provider", SITES)
def test_purge_data_drops_retention_and_lets_buckets_go_with_their_backups(provider: str) -> None:
    kept = run_program(cloud_spec(), SITES[provider])
    purged = run_program(cloud_spec(), SITES[provider], purge_data=True)
    assert not purged.one(VOLUME[provider]).opts.retain_on_delete
    if provider in BUCKET:
        assert kept.one(BUCKET[provider]).opts.retain_on_delete is True
        assert "forceDestroy" not in kept.one(BUCKET[provider]).inputs  # no diff on a normal up
        assert not purged.one(BUCKET[provider]).opts.retain_on_delete
        assert purged.one(BUCKET[provider]).inputs["forceDestroy"] is True


@pytest.mark.parametrize("provider", SITES)
def test_a_renewed_vm_gets_todays_image_and_bootstrap_and_is_replaced_delete_first(provider: str) -> None:
    # the engine fills ignored inputs from the old state even for a replacement: `up --replace-vm`
    # must stop ignoring them, or the new VM would boot the old image with the old bootstrap
    assert run_program(cloud_spec(), SITES[provider]).one(VM[provider]).opts.ignore_changes
    renewed = run_program(cloud_spec(), SITES[provider], renew_vm=True)
    vm = renewed.one(VM[provider])
    assert not vm.opts.ignore_changes and vm.opts.delete_before_replace is True
    assert renewed.one(VOLUME[provider]).opts.retain_on_delete is True  # data kept through it


@pytest.mark.parametrize("provider", SITES)
def test_the_urns_deplat_names_are_resources_of_the_program(provider: str) -> None:
    from deplat.stacks.site import kept_on_destroy, urn

    spec = cloud_spec()
    site = spec.site(SITES[provider])
    registered = {(r.typ, r.name) for r in run_program(spec, site.name).resources}
    for kind in ["vm", *kept_on_destroy(site)]:
        prefix, project, typ, name = urn(spec, site, kind).split("::")
        assert prefix == f"urn:pulumi:{site.name}" and project == spec.app
        assert (typ, name) in registered, f"{kind}: no {typ} named {name}"


@pytest.mark.parametrize("provider", SITES)
def test_kept_data_has_no_fixed_name_so_a_later_up_makes_new_ones_beside_it(provider: str) -> None:
    # destroy forgets the retained volume and bucket; the next `up` creates new ones, which must
    # not collide with the kept ones: their physical names are Pulumi's (a random suffix)
    program = run_program(cloud_spec(), SITES[provider])
    for typ in [VOLUME[provider], *([BUCKET[provider]] if provider in BUCKET else [])]:
        inputs = program.one(typ).inputs
        assert "name" not in inputs and "bucket" not in inputs, typ
