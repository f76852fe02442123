"""Fence and forget: a left site's state is archived from local files only, never through its provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deplat.failover.addresses import known_addresses, remember_addresses
from deplat.failover.archive import archive_site_state
from deplat.paths import home, local_site_dir
from deplat.sites import Addresses
from deplat.spec import load_spec
from tests.engine.conftest import (  # noqa: F401 (fixtures: the engine's fake pulumi CLI)
    PASSPHRASE,
    cloud_spec,
    cloud_spec_path,
    fake_pulumi,
    stand_ins,
)
from tests.failover.conftest import guestbook_doc


def spec_with_cloud_site(tmp_path: Path):
    doc = guestbook_doc("127.9.9", 18080)
    doc["sites"].append({"name": "hetzner-fsn", "provider": "hcloud", "role": "cold", "region": "fsn1"})
    for svc in doc["services"].values():  # Hetzner volumes are at least 10 GiB
        for volume in svc.get("volumes", []):
            volume["size"] = max(volume["size"], 10)
    path = tmp_path / "deplat.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_spec(path)


def test_a_local_sites_state_file_is_copied_to_the_archive(tmp_path: Path) -> None:
    spec = spec_with_cloud_site(tmp_path)
    site_dir = local_site_dir(spec, "site-a")
    (site_dir / "data" / "web").mkdir(parents=True)
    (site_dir / "state.json").write_text('{"services": {}}')
    (site_dir / "data" / "web" / "entries.jsonl").write_text("{}\n")
    archive = archive_site_state(spec, "site-a", "j1")
    assert archive["files"] == ["state.json"]
    assert json.loads((Path(archive["path"]) / "state.json").read_text()) == {"services": {}}
    assert not (Path(archive["path"]) / "data").exists()  # data travels by backups, not archives


def test_a_pulumi_sites_checkpoint_is_copied_from_the_file_backend(tmp_path: Path) -> None:
    spec = spec_with_cloud_site(tmp_path)
    stacks = home(spec) / "state" / ".pulumi" / "stacks" / "guestbook"
    stacks.mkdir(parents=True)
    (stacks / "hetzner-fsn.json").write_text('{"checkpoint": {}}')
    (stacks / "other.json").write_text("{}")
    archive = archive_site_state(spec, "hetzner-fsn", "j2")
    assert archive["kind"] == "pulumi" and archive["files"] == ["hetzner-fsn.json"]
    assert (Path(archive["path"]) / "hetzner-fsn.json").read_text() == '{"checkpoint": {}}'


def test_addresses_of_a_cloud_site_come_from_the_address_book_not_its_provider(tmp_path: Path) -> None:
    spec = spec_with_cloud_site(tmp_path)
    assert known_addresses(spec, "hetzner-fsn") is None
    remember_addresses(spec, "hetzner-fsn", Addresses(ipv4=["192.0.2.7"]))
    assert known_addresses(spec, "hetzner-fsn") == Addresses(ipv4=["192.0.2.7"])
    assert known_addresses(spec, "site-b") == Addresses(ipv4=["127.9.9.12"])


@pytest.mark.slow
def test_a_pulumi_site_is_archived_with_stack_export_through_the_engine(
    cloud_spec,  # noqa: F811 - a fixture of tests/engine
    fake_pulumi,  # noqa: F811
    stand_ins,  # noqa: F811
) -> None:
    from deplat import operations
    from deplat.secrets import SecretStore

    secrets = SecretStore(cloud_spec)
    (result,) = operations.up_sites(cloud_spec, ["aws-a"], secrets)
    assert result.ok, result.error
    archive = archive_site_state(cloud_spec, "aws-a", "j3", secrets)
    assert archive["via"] == "pulumi stack export"
    exported = json.loads((Path(archive["path"]) / "aws-a.export.json").read_text())
    assert exported["deployment"]["resources"]
    assert [c["argv"] for c in fake_pulumi.commands("stack", "export")]  # the CLI's export, not the cloud
    assert not fake_pulumi.commands("up")[1:]  # nothing but the one `up` above touched the stack
    assert PASSPHRASE not in (Path(archive["path"]) / "aws-a.export.json").read_text()
