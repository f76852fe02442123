"""Backups: round trips with data intact, newest wins, pruning, RPO, and the source left alone."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from deplat.errors import InputError, OperationFailed
from deplat.events import Recorder
from deplat.failover import data
from deplat.failover.backup import (
    ResticBackupStore,
    backup_site,
    make_store,
    restore_site,
    service_data_dir,
)
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec

SPEC = """\
version: 1
app: gb
services:
  web:
    image: x
    ports: [{port: 18080, public: true}]
    volumes: [{name: data, path: /data, size: 1}]
    local: {command: [python3, app.py]}
  cache:
    image: y
    ports: [{port: 18081}]
    local: {command: [python3, cache.py]}
domain: {zone: gb.test, names: [gb.test]}
backups: {keep: 3%s}
sites:
  - {name: site-a, provider: local, role: primary, options: {address: 127.0.0.91}}
  - {name: site-b, provider: local, role: warm, options: {address: 127.0.0.92}}
"""


def make_spec(tmp_path: Path, store: str | None = None) -> Spec:
    path = tmp_path / "deplat.yaml"
    path.write_text(SPEC % (f", store: {store}" if store else ""), encoding="utf-8")
    return load_spec(path)


def tree(path: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``path``."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def fill(directory: Path, entries: int, tag: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "entries.jsonl").write_text(
        "".join(json.dumps({"id": i, "message": f"m{i}{tag}"}) + "\n" for i in range(entries)),
        encoding="utf-8",
    )
    (directory / "sub").mkdir(exist_ok=True)
    (directory / "sub" / "blob.bin").write_bytes(os.urandom(4096) + tag.encode())


@pytest.mark.slow
def test_site_backup_and_restore_move_the_data_and_report_rpo(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = make_store(spec)
    assert isinstance(store, ResticBackupStore)  # restic, in a local directory repository
    source = service_data_dir(spec, "site-a", "web")
    fill(source, 20)
    service_data_dir(spec, "site-a", "cache").mkdir(parents=True)  # stateless: never backed up
    source_before = tree(source.parents[1])
    events = Recorder()
    backups = backup_site(spec, "site-a", store, events)
    assert [b.service for b in backups] == ["web"]
    assert events.kinds() == ["backup.done"]

    target = service_data_dir(spec, "site-b", "web")
    fill(target, 1, "stale")  # a warm site's own old data is replaced whole
    (target / "only-on-b").write_text("x")
    newest = store.latest("web")
    assert newest is not None and backups[0].taken_at <= newest.taken_at  # restic's time: when it started
    restored = restore_site(spec, "site-b", store, reference_time=newest.taken_at + 7.5, emit=events)
    assert [(r.service, r.site) for r in restored] == [("web", "site-a")]
    assert (restored[0].backup_id or "").startswith(backups[0].id)
    assert restored[0].rpo_seconds == pytest.approx(7.5)
    assert tree(target) == tree(source)
    assert tree(source.parents[1]) == source_before  # the source site is never touched
    assert events.kinds()[-1] == "restore.done"
    assert sorted(p.name for p in target.parent.iterdir()) == ["web"]


@pytest.mark.slow
def test_backups_are_pruned_to_keep_once_the_slack_piled_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deplat.data.restic import Restic

    spec = make_spec(tmp_path)  # keep: 3
    store = make_store(spec)
    store.prune_slack = 1
    source = service_data_dir(spec, "site-a", "web")
    listings: list[int] = []
    snapshots = Restic.snapshots
    monkeypatch.setattr(Restic, "snapshots", lambda *a, **k: listings.append(1) or snapshots(*a, **k))
    held = []
    for n in range(5):
        fill(source, n + 1)
        backup_site(spec, "site-a", store)  # each backup, then a prune when due
        held.append(len(store.list("web")))
    # pruned when a backup made 5 (more than keep + slack), back to 3
    assert held == [1, 2, 3, 4, 3]
    # each backup lists the repository once (its sequence number) and the prune counts from that:
    # 5 listings, the test's own 5, and one by the forget that chose what to drop
    assert len(listings) == 5 + 5 + 1
    assert store.prune("web", 3) == 0  # 3 held (listed this time): not due


def test_restore_without_any_backup_says_so(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    [restored] = restore_site(spec, "site-b", make_store(spec), reference_time=5.0)
    assert (restored.service, restored.backup_id, restored.rpo_seconds) == ("web", None, None)
    assert not service_data_dir(spec, "site-b", "web").exists()


@pytest.mark.slow
def test_backup_site_skips_a_service_without_data_yet(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    events = Recorder()
    assert backup_site(spec, "site-a", make_store(spec), events) == []
    assert events.kinds() == ["backup.skip"]


def test_make_store_places_backups_beside_the_spec(tmp_path: Path) -> None:
    store = make_store(make_spec(tmp_path))
    assert isinstance(store, ResticBackupStore)
    assert [r.url for r in store.repositories] == [
        str((tmp_path / ".deplat" / "backups" / "restic").resolve())
    ]
    key = tmp_path / ".deplat" / "backups" / "restic-password"
    assert key.stat().st_mode & 0o077 == 0 and store.password == key.read_text()


@pytest.mark.parametrize("store", ["s3://bucket/prefix", "gs://bucket/prefix"])
def test_an_object_storage_store_is_refused_naming_backups_repositories(tmp_path: Path, store: str) -> None:
    with pytest.raises(InputError, match="stores are not supported") as refused:
        make_store(make_spec(tmp_path, store))
    assert "backups.repositories" in (refused.value.hint or "")


def test_make_store_refuses_a_store_inside_a_site(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="inside the local sites' dir"):
        make_store(make_spec(tmp_path, ".deplat/local/site-a/backups"))


def cloud_spec(tmp_path: Path, options: str) -> Spec:
    path = tmp_path / "deplat.yaml"
    path.write_text(
        (SPEC % "") + f"  - {{name: cloud, provider: aws, role: warm, region: eu-central-1{options}}}\n",
        encoding="utf-8",
    )
    return load_spec(path)


def test_a_warm_cloud_site_with_ssh_closed_cannot_take_the_data_and_the_fix_is_named(tmp_path: Path) -> None:
    spec = cloud_spec(tmp_path, "")
    with pytest.raises(InputError, match="port 22 is closed") as refused:
        data.check_target(spec, "cloud", "warm")
    assert "options.ssh_cidrs" in (refused.value.hint or "")
    data.check_target(spec, "cloud", "cold")  # a cold one restores at its first boot
    data.check_target(cloud_spec(tmp_path, ", options: {ssh_cidrs: [192.0.2.7/32]}"), "cloud", "warm")


def test_a_cloud_sites_data_is_never_looked_for_in_a_local_folder(tmp_path: Path) -> None:
    spec = cloud_spec(tmp_path, "")
    with pytest.raises(OperationFailed, match="reached over SSH"):
        restore_site(spec, "cloud", make_store(spec), reference_time=0.0)
