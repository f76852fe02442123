"""Fence and forget: a left site's state is archived from local files only, never through its provider."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deplat.failover.run import archive_site_state, known_addresses, remember_addresses
from deplat.paths import home, local_site_dir
from deplat.sites import Addresses
from deplat.spec import load_spec
from tests.failover.conftest import guestbook_doc


def spec_with_cloud_site(tmp_path: Path):
    doc = guestbook_doc("127.9.9", 18080)
    doc["sites"].append({"name": "hetzner-fsn", "provider": "hcloud", "role": "cold", "region": "fsn1"})
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
