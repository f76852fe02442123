"""The S3 backup store against a real S3 API (moto server on loopback): the same contract as local."""

from __future__ import annotations

import hashlib
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deplat.failover.backup import BackupCorrupt, S3BackupStore, backup_site, make_store, restore_site
from deplat.spec.loader import load_spec

pytestmark = pytest.mark.slow

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

SPEC = """\
version: 1
app: gb
services:
  web:
    image: x
    ports: [{port: 18080, public: true}]
    volumes: [{name: data, path: /data, size: 1}]
    local: {command: [python3, app.py]}
domain: {zone: gb.test, names: [gb.test]}
backups: {keep: 2, store: "s3://backups/gb/prod"}
sites:
  - {name: site-a, provider: local, role: primary, options: {address: 127.0.0.95}}
  - {name: site-b, provider: local, role: warm, options: {address: 127.0.0.96}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5)
    client.create_bucket(Bucket="backups")
    return client


def tree(path: Path) -> dict[str, str]:
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def fill(directory: Path, text: str) -> None:
    (directory / "nested").mkdir(parents=True, exist_ok=True)
    (directory / "entries.jsonl").write_text(text, encoding="utf-8")
    (directory / "nested" / "blob.bin").write_bytes(text.encode() * 100)


def test_round_trip_latest_and_prune_through_s3(s3: Any, tmp_path: Path) -> None:
    counter = itertools.count()
    store = S3BackupStore("backups", "gb", client=s3, clock=lambda: 1000.0 + next(counter))
    source = tmp_path / "src"
    made = []
    for i in range(3):
        fill(source, f"version {i}\n")
        made.append(store.put("site-a", "web", source))
    assert store.latest("web") == made[-1]
    assert made[-1].location == f"s3://backups/gb/web/{made[-1].id}"
    store.fetch(made[-1], tmp_path / "out")
    assert tree(tmp_path / "out") == tree(source)
    removed = store.prune("web", 2)
    assert [b.id for b in removed] == [made[0].id]
    assert [b.id for b in store.list("web")] == [b.id for b in made[1:]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="backups").get("Contents", [])]
    assert not any(made[0].id in k for k in keys)


def test_an_upload_without_its_manifest_is_not_a_backup(s3: Any) -> None:
    s3.put_object(Bucket="backups", Key="gb/web/20260101T000000.000000Z-abcdef/data/entries.jsonl", Body=b"x")
    assert S3BackupStore("backups", "gb", client=s3).list("web") == []


def test_a_tampered_object_is_refused(s3: Any, tmp_path: Path) -> None:
    store = S3BackupStore("backups", "gb", client=s3)
    fill(tmp_path / "src", "entries\n")
    backup = store.put("site-a", "web", tmp_path / "src")
    s3.put_object(Bucket="backups", Key=f"gb/web/{backup.id}/data/entries.jsonl", Body=b"tampered")
    with pytest.raises(BackupCorrupt):
        store.fetch(backup, tmp_path / "out")


def test_sites_move_their_data_through_the_spec_s3_store(s3: Any, tmp_path: Path) -> None:
    (tmp_path / "deplat.yaml").write_text(SPEC, encoding="utf-8")
    spec = load_spec(tmp_path / "deplat.yaml")
    store = make_store(spec)  # a fresh boto3 client from the environment (AWS_ENDPOINT_URL_S3)
    assert isinstance(store, S3BackupStore)
    assert (store.bucket, store.prefix) == ("backups", "gb/prod")
    source = tmp_path / ".deplat" / "local" / "site-a" / "data" / "web"
    fill(source, '{"id": 1, "message": "kept"}\n')
    before = tree(source)
    [backup] = backup_site(spec, "site-a", store)
    [restored] = restore_site(spec, "site-b", store, reference_time=backup.taken_at + 3.0)
    assert restored.backup_id == backup.id
    assert restored.rpo_seconds == pytest.approx(3.0)
    assert tree(tmp_path / ".deplat" / "local" / "site-b" / "data" / "web") == before
    assert tree(source) == before
