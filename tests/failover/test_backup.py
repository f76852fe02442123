"""Backups: round trips with data intact, newest wins, pruning, RPO, and the source left alone."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from pathlib import Path

import pytest

from deplat.errors import InputError, OperationFailed
from deplat.events import Recorder
from deplat.failover.backup import (
    BackupCorrupt,
    LocalBackupStore,
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


def ticking(start: float = 1000.0):  # type: ignore[no-untyped-def]
    counter = itertools.count()
    return lambda: start + next(counter)


def test_round_trip_keeps_every_byte_and_a_manifest(tmp_path: Path) -> None:
    source = tmp_path / "src"
    fill(source, 50)
    store = LocalBackupStore(tmp_path / "store")
    backup = store.put("site-a", "web", source)
    assert (backup.service, backup.site, backup.files) == ("web", "site-a", 2)
    assert backup.bytes == sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    manifest = json.loads((Path(backup.location) / "manifest.json").read_text())
    assert manifest["files_sha256"]["entries.jsonl"]["sha256"] == tree(source)["entries.jsonl"]
    store.fetch(backup, tmp_path / "out")
    assert tree(tmp_path / "out") == tree(source)


def test_latest_is_the_newest_backup(tmp_path: Path) -> None:
    store = LocalBackupStore(tmp_path / "store", clock=ticking())
    source = tmp_path / "src"
    fill(source, 1, "old")
    first = store.put("site-a", "web", source)
    fill(source, 2, "new")
    second = store.put("site-a", "web", source)
    assert second.taken_at > first.taken_at
    assert store.latest("web") == second
    assert [b.id for b in store.list("web")] == [first.id, second.id]
    assert store.latest("other") is None


@pytest.mark.slow
def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    store = LocalBackupStore(tmp_path / "store", clock=ticking())
    source = tmp_path / "src"
    fill(source, 1)
    made = [store.put("site-a", "web", source) for _ in range(5)]
    removed = store.prune("web", 2)
    assert [b.id for b in removed] == [b.id for b in made[:3]]
    assert [b.id for b in store.list("web")] == [b.id for b in made[3:]]
    assert not any(Path(b.location).exists() for b in removed)


def test_an_unfinished_backup_is_ignored(tmp_path: Path) -> None:
    store = LocalBackupStore(tmp_path / "store")
    (tmp_path / "store" / "web" / ".partial-x" / "data").mkdir(parents=True)
    (tmp_path / "store" / "web" / "no-manifest").mkdir()
    assert store.list("web") == []


def test_a_corrupt_backup_is_refused_and_the_target_kept(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = LocalBackupStore(tmp_path / "store")  # the manifest-checked store (restic checks its own)
    fill(service_data_dir(spec, "site-a", "web"), 3)
    [backup] = backup_site(spec, "site-a", store)
    (Path(backup.location) / "data" / "entries.jsonl").write_text("tampered\n")
    target = service_data_dir(spec, "site-b", "web")
    fill(target, 1, "mine")
    before = tree(target)
    with pytest.raises(BackupCorrupt):
        restore_site(spec, "site-b", store, reference_time=2000.0)
    assert tree(target) == before
    assert [p.name for p in target.parent.iterdir()] == ["web"]  # no temp dir left behind


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


def test_restore_without_any_backup_says_so(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    [restored] = restore_site(spec, "site-b", make_store(spec), reference_time=5.0)
    assert (restored.service, restored.backup_id, restored.rpo_seconds) == ("web", None, None)
    assert not service_data_dir(spec, "site-b", "web").exists()


@pytest.mark.slow
def test_backup_site_skips_a_service_without_data_yet_and_prunes_to_keep(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = LocalBackupStore(tmp_path / "store")
    events = Recorder()
    assert backup_site(spec, "site-a", store, events) == []
    assert events.kinds() == ["backup.skip"]
    fill(service_data_dir(spec, "site-a", "web"), 2)
    for _ in range(5):
        backup_site(spec, "site-a", store)
    assert len(store.list("web")) == spec.backups.keep == 3


@pytest.mark.slow
def test_backups_taken_during_writes_are_prefixes_of_the_data(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    log = source / "entries.jsonl"
    log.touch()
    stop = threading.Event()

    def writer() -> None:
        i = 0
        with log.open("a", encoding="utf-8") as f:
            while not stop.is_set() and i < 200_000:
                f.write(json.dumps({"id": i, "message": "x" * 50}) + "\n")
                f.flush()
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    store = LocalBackupStore(tmp_path / "store")
    try:
        backups = [store.put("site-a", "web", source) for _ in range(10)]
    finally:
        stop.set()
        thread.join(10)
    final = log.read_bytes()
    for backup in backups:
        copied = (Path(backup.location) / "data" / "entries.jsonl").read_bytes()
        assert final.startswith(copied)


def test_make_store_places_backups_beside_the_spec(tmp_path: Path) -> None:
    store = make_store(make_spec(tmp_path))
    assert isinstance(store, ResticBackupStore)
    assert [r.url for r in store.repositories] == [
        str((tmp_path / ".deplat" / "backups" / "restic").resolve())
    ]
    key = tmp_path / ".deplat" / "backups" / "restic-password"
    assert key.stat().st_mode & 0o077 == 0 and store.password == key.read_text()


def test_make_store_refuses_other_object_storage_for_now(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gs:// stores are not supported yet"):
        make_store(make_spec(tmp_path, "gs://bucket/prefix"))


def test_make_store_refuses_a_store_inside_a_site(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="inside the local sites' dir"):
        make_store(make_spec(tmp_path, ".deplat/local/site-a/backups"))


def test_cloud_sites_are_refused_honestly(tmp_path: Path) -> None:
    path = tmp_path / "deplat.yaml"
    path.write_text(
        (SPEC % "") + "  - {name: cloud, provider: aws, role: cold, region: eu-central-1}\n", encoding="utf-8"
    )
    spec = load_spec(path)
    with pytest.raises(
        OperationFailed, match="aws site: backups of cloud sites' data are not implemented yet"
    ):
        restore_site(spec, "cloud", make_store(spec), reference_time=0.0)
