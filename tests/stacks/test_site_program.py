"""Each provider's site under Pulumi's mock runtime: what it creates and with which inputs."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from deplat.errors import InputError
from deplat.secrets import SecretStore
from deplat.spec.model import Spec
from deplat.stacks.bootstrap import unpack
from deplat.stacks.site import SiteContext, program
from deplat.transport.keys import generate
from tests.stacks.conftest import cloud_spec, is_secret, run_site, unwrap, with_ssh

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDKs' own aliases

SITES = {"aws": "aws-a", "gcp": "gcp-b", "hcloud": "hz-c"}
APP_KEY = generate("shop")  # the app's SSH key, as the secret DEPLAT_SSH_KEY: nothing on disk
SECRETS = {
    "SHOP_DB_PASSWORD": "pw-Secret-Value-1",
    "HCLOUD_S3_ACCESS_KEY": "s3-access-Value-2",
    "HCLOUD_S3_SECRET_KEY": "s3-secret-Value-3",
    "DEPLAT_SSH_KEY": APP_KEY.private.export_private_key("openssh").decode(),
}


def store(spec: Spec) -> SecretStore:
    return SecretStore(spec, environ=SECRETS)


def test_aws_site_creates_the_expected_resources(spec: Spec) -> None:
    run = run_site(spec, "aws-a")
    assert run.types == sorted(
        [
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ebs/volume:Volume",
            "aws:ec2/instance:Instance",
            "aws:ec2/volumeAttachment:VolumeAttachment",
            "aws:ec2/eip:Eip",
            "aws:s3/bucket:Bucket",
            "aws:s3/bucketVersioning:BucketVersioning",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        ]
    )
    vm = run.one("aws:ec2/instance:Instance").inputs
    assert vm["instanceType"] == "t3.medium"
    assert vm["availabilityZone"] == "eu-west-1b"
    assert vm["metadataOptions"]["httpTokens"] == "required"
    assert vm["metadataOptions"]["httpPutResponseHopLimit"] == 1
    vol = run.one("aws:ebs/volume:Volume").inputs
    assert (vol["size"], vol["availabilityZone"], vol["type"]) == (25, "eu-west-1b", "gp3")
    assert run.one("aws:ec2/eip:Eip").inputs["domain"] == "vpc"


def test_gcp_site_creates_the_expected_resources(spec: Spec) -> None:
    run = run_site(spec, "gcp-b")
    assert run.types == sorted(
        [
            "gcp:projects/service:Service",  # compute.googleapis.com, off in a fresh project
            "gcp:projects/service:Service",  # storage.googleapis.com
            "gcp:compute/network:Network",
            "gcp:compute/firewall:Firewall",
            "gcp:compute/address:Address",
            "gcp:compute/disk:Disk",
            "gcp:compute/instance:Instance",
            "gcp:storage/bucket:Bucket",
        ]
    )
    vm = run.one("gcp:compute/instance:Instance").inputs
    assert vm["machineType"] == "e2-small"
    assert vm["zone"] == "us-central1-b"
    assert vm["bootDisk"]["initializeParams"]["image"] == "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
    assert vm["networkInterfaces"][0]["accessConfigs"][0]["natIp"] == "192.0.2.2"
    assert run.one("gcp:compute/disk:Disk").inputs["size"] == 25
    assert run.one("gcp:compute/address:Address").inputs["region"] == "us-central1"


def test_hcloud_site_creates_the_expected_resources(spec: Spec) -> None:
    run = run_site(spec, "hz-c")
    assert run.types == sorted(
        [
            "hcloud:index/firewall:Firewall",
            "hcloud:index/primaryIp:PrimaryIp",
            "hcloud:index/primaryIp:PrimaryIp",
            "hcloud:index/volume:Volume",
            "hcloud:index/server:Server",
            "hcloud:index/volumeAttachment:VolumeAttachment",
        ]
    )
    server = run.one("hcloud:index/server:Server")
    assert (server.inputs["serverType"], server.inputs["location"]) == ("cpx21", "nbg1")
    ips = {r.inputs["type"]: r for r in run.of("hcloud:index/primaryIp:PrimaryIp")}
    assert set(ips) == {"ipv4", "ipv6"} and all(not r.inputs["autoDelete"] for r in ips.values())
    from deplat.plan import mock_id

    net = server.inputs["publicNets"][0]
    assert net["ipv4"] == mock_id(ips["ipv4"].typ, ips["ipv4"].name)
    assert net["ipv6"] == mock_id(ips["ipv6"].typ, ips["ipv6"].name)
    fw = run.one("hcloud:index/firewall:Firewall")
    assert server.inputs["firewallIds"] == [mock_id(fw.typ, fw.name)]


def _opened(run: Any, provider: str) -> set[tuple[int, str, tuple[str, ...]]]:
    """(port, protocol, sources) of every rule the site's firewall opens."""
    opened = set()
    if provider == "aws":
        for rule in run.one("aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]:
            assert rule["fromPort"] == rule["toPort"]
            sources = tuple(rule.get("cidrBlocks", []) + rule.get("ipv6CidrBlocks", []))
            opened.add((int(rule["fromPort"]), rule["protocol"], sources))
    elif provider == "gcp":
        for fw in run.of("gcp:compute/firewall:Firewall"):
            for allow in fw.inputs["allows"]:
                for port in allow["ports"]:
                    opened.add((int(port), allow["protocol"], tuple(fw.inputs["sourceRanges"])))
    else:
        for rule in run.one("hcloud:index/firewall:Firewall").inputs["rules"]:
            assert rule["direction"] == "in"
            opened.add((int(rule["port"]), rule["protocol"], tuple(rule["sourceIps"])))
    return opened


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_firewall_opens_exactly_the_public_ports_and_the_https_front(spec: Spec, provider: str) -> None:
    run = run_site(spec, SITES[provider])
    everyone = ("0.0.0.0/0",) if provider == "gcp" else ("0.0.0.0/0", "::/0")
    expected = {
        (8080, "tcp", everyone),
        (5060, "udp", everyone),
        (80, "tcp", everyone),
        (443, "tcp", everyone),
    }
    assert _opened(run, provider) == expected  # not 9090 (private), not 22 (no ssh_cidrs)


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_ssh_is_opened_only_from_the_configured_ranges(provider: str) -> None:
    site = SITES[provider]
    spec = cloud_spec(with_ssh(site))
    ssh = {rule for rule in _opened(run_site(spec, site), provider) if rule[0] == 22}
    assert ssh == {(22, "tcp", ("203.0.113.0/24", "2001:db8:1::/48"))}


def _user_data(run: Any, provider: str) -> tuple[bool, str]:
    """(sent as a secret?, text) of the VM's user data."""
    if provider == "gcp":
        metadata = run.one("gcp:compute/instance:Instance").inputs["metadata"]
        packed = unwrap(metadata)  # the whole map is secret
        assert packed["user-data-encoding"] == "base64"
        return is_secret(metadata), unpack(packed["user-data"])  # gzip + base64 everywhere
    typ, key = {
        "aws": ("aws:ec2/instance:Instance", "userDataBase64"),
        "hcloud": ("hcloud:index/server:Server", "userData"),
    }[provider]
    raw = run.one(typ).inputs[key]
    return is_secret(raw), unpack(unwrap(raw))


def _volume_id(run: Any, provider: str) -> str:
    from deplat.plan import mock_id

    typ = {
        "aws": "aws:ebs/volume:Volume",
        "gcp": "gcp:compute/disk:Disk",
        "hcloud": "hcloud:index/volume:Volume",
    }
    vol = run.one(typ[provider])
    return str(mock_id(vol.typ, vol.name))


@pytest.mark.parametrize("provider", SITES)
def test_user_data_is_the_rendered_bootstrap_and_secret(spec: Spec, provider: str) -> None:

    secrets = store(spec)
    run = run_site(spec, SITES[provider], secrets)
    secret, text = _user_data(run, provider)
    assert secret
    module = importlib.import_module(f"deplat.providers.{provider}")
    ctx = SiteContext(spec, spec.site(SITES[provider]), secrets)
    assert text == ctx.bootstrap(module.data_device(_volume_id(run, provider)))
    assert "SHOP_DB_PASSWORD=pw-Secret-Value-1" in text
    doc = yaml.safe_load(text)  # the app's key for root, key only (deplat reaches the site over SSH)
    assert doc["ssh_authorized_keys"] == [APP_KEY.public_line]
    assert (doc["disable_root"], doc["ssh_pwauth"]) == (False, False)


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_secret_values_appear_only_inside_secret_inputs(spec: Spec, provider: str) -> None:
    run = run_site(spec, SITES[provider], store(spec))

    def plain_strings(value: Any) -> list[str]:
        if is_secret(value):
            return []
        if isinstance(value, dict):
            return [s for v in value.values() for s in plain_strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in plain_strings(v)]
        return [str(value)]

    shown = " ".join(s for r in run.resources for s in plain_strings(r.inputs))
    for value in SECRETS.values():
        assert value not in shown


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_data_volume_is_attached_to_the_vm(spec: Spec, provider: str) -> None:
    from deplat.plan import mock_id

    run = run_site(spec, SITES[provider])
    volume_id = _volume_id(run, provider)
    if provider == "aws":
        vm = run.one("aws:ec2/instance:Instance")
        att = run.one("aws:ec2/volumeAttachment:VolumeAttachment").inputs
        assert (att["volumeId"], att["instanceId"]) == (volume_id, str(mock_id(vm.typ, vm.name)))
        assert att["deviceName"] == "/dev/sdf"
    elif provider == "gcp":
        disks = run.one("gcp:compute/instance:Instance").inputs["attachedDisks"]
        assert disks == [{"source": volume_id, "deviceName": "data"}]
    else:
        vm = run.one("hcloud:index/server:Server")
        att = run.one("hcloud:index/volumeAttachment:VolumeAttachment").inputs
        assert (att["volumeId"], att["serverId"]) == (int(volume_id), mock_id(vm.typ, vm.name))


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["aws", "gcp"])  # Hetzner's backups: restic makes its bucket
def test_backup_bucket_is_versioned(spec: Spec, provider: str) -> None:
    run = run_site(spec, SITES[provider])
    if provider == "gcp":
        bucket = run.one("gcp:storage/bucket:Bucket")
        assert bucket.inputs["versioning"] == {"enabled": True}
    else:
        from deplat.plan import mock_id

        bucket = run.one("aws:s3/bucket:Bucket")
        versioning = run.one("aws:s3/bucketVersioning:BucketVersioning").inputs
        assert versioning["bucket"] == str(mock_id(bucket.typ, bucket.name))
        assert versioning["versioningConfiguration"]["status"] == "Enabled"
    assert bucket.name.startswith(f"shop-{SITES[provider]}-backups")


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_tags_name_app_and_site_on_every_taggable_resource(spec: Spec, provider: str) -> None:
    run = run_site(spec, SITES[provider])
    key = "tags" if provider == "aws" else "labels"
    untaggable = {
        "aws:ec2/volumeAttachment:VolumeAttachment",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "gcp:compute/network:Network",
        "gcp:compute/firewall:Firewall",
        "gcp:projects/service:Service",
        "hcloud:index/volumeAttachment:VolumeAttachment",
    }
    checked = [r for r in run.resources if r.typ not in untaggable]
    assert len(checked) >= 4
    for res in checked:
        tags = res.inputs.get(key)
        assert tags is not None, f"{res.typ} {res.name} has no {key}"
        assert tags["deplat-app"] == "shop" and tags["deplat-site"] == SITES[provider], res.typ


# The resource each output is read from: the reserved address (it outlives a replaced VM), the VM,
# the backup bucket; (type, the field of its state).
ADDRESS = {
    "aws": ("aws:ec2/eip:Eip", "publicIp"),
    "gcp": ("gcp:compute/address:Address", "address"),
    "hcloud": ("hcloud:index/primaryIp:PrimaryIp", "ipAddress"),
}
VM = {
    "aws": "aws:ec2/instance:Instance",
    "gcp": "gcp:compute/instance:Instance",
    "hcloud": "hcloud:index/server:Server",
}
BUCKET = {"aws": "aws:s3/bucket:Bucket", "gcp": "gcp:storage/bucket:Bucket"}


@pytest.mark.parametrize("provider", SITES)
def test_site_outputs_are_read_from_the_reserved_address_the_vm_and_the_bucket(
    spec: Spec, provider: str
) -> None:
    from deplat.plan import mock_id

    run = run_site(spec, SITES[provider], distinct=True)
    typ, field = ADDRESS[provider]
    if provider == "hcloud":
        ipv4 = next(r for r in run.of(typ) if r.inputs["type"] == "ipv4")
        # the server's own address in its primary IPv6 network (the network is not an address)
        assert run.outputs["ipv6"] == run.one(VM[provider]).state["ipv6Address"]
    else:
        ipv4 = run.one(typ)
        assert "ipv6" not in run.outputs
    assert run.outputs["ipv4"] == ipv4.state[field]
    assert run.outputs["ipv4"] not in {
        run.one(VM[provider]).state.get(k) for k in ("publicIp", "address", "ipAddress")
    }
    vm = run.one(VM[provider])
    assert run.outputs["instance_id"] == str(mock_id(vm.typ, vm.name))
    if provider in BUCKET:
        bucket = run.one(BUCKET[provider])
        assert run.outputs["bucket"] == bucket.state["bucket" if provider == "aws" else "name"]
        assert bucket.name.startswith(f"shop-{SITES[provider]}-backups")
    else:
        assert "bucket" not in run.outputs  # Hetzner's backups: restic makes its own bucket
    assert run.outputs["url"] == "https://shop.example.org"


def test_program_exports_the_site_outputs(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda k, v: exported.__setitem__(k, v))
    from deplat import providers
    from deplat.plan import PlanMocks

    pulumi.runtime.set_mocks(PlanMocks(providers.get("aws")), project="shop", stack="aws-a", preview=False)

    @pulumi.runtime.test
    def go() -> None:
        program(spec, spec.site("aws-a"), None)()

    go()
    assert set(exported) == {"ipv4", "url", "bucket", "instance_id"}


def test_missing_service_secret_is_an_input_error_naming_it(spec: Spec) -> None:
    with pytest.raises(InputError, match="SHOP_DB_PASSWORD"):
        SiteContext(spec, spec.site("aws-a"), SecretStore(spec, environ={}))


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeplatTestKey ops@example.org"


@pytest.mark.slow
@pytest.mark.parametrize("provider", SITES)
def test_an_ssh_public_key_is_installed_for_the_admin(provider: str) -> None:
    from deplat.plan import mock_id

    site = SITES[provider]
    text = with_ssh(site).replace("ssh_cidrs:", f'ssh_public_key: "{KEY}", ssh_cidrs:', 1)
    spec = cloud_spec(text)
    run = run_site(spec, site)
    if provider == "aws":
        key = run.one("aws:ec2/keyPair:KeyPair")
        assert key.inputs["publicKey"] == KEY
        assert (
            run.one("aws:ec2/instance:Instance").inputs["keyName"]
            == key.inputs["keyName"]
            == "deplat-shop-aws-a"
        )
    elif provider == "gcp":
        metadata = unwrap(run.one("gcp:compute/instance:Instance").inputs["metadata"])
        assert metadata["ssh-keys"] == f"deplat:{KEY}"
    else:
        key = run.one("hcloud:index/sshKey:SshKey")
        assert key.inputs["publicKey"] == KEY
        assert run.one("hcloud:index/server:Server").inputs["sshKeys"] == [str(mock_id(key.typ, key.name))]
