"""``deplat backups`` through the real CLI: the newest snapshot per repository and its age, a
repository that does not answer (exit 1, the others still listed), and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.data.restic import Repository, Restic
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.support.object_storage import KEY_ID, SECRET, S3Server, free_port
from tests.support.trees import write_files

HEAD = """\
version: 1
app: shop
services:
  web:
    image: x
    ports: [{port: 8080, public: true}]
    volumes: [{name: data, path: /data}]
    local: {command: [python3, app.py]}
domain: {zone: shop.test, names: [shop.test]}
sites:
  - {name: a, provider: local, role: primary, options: {address: 127.0.0.95}}
  - {name: b, provider: local, role: warm, options: {address: 127.0.0.96}}
"""


def write_spec(folder: Path, repositories: str) -> Path:
    spec = folder / "deplat.yaml"
    spec.write_text(HEAD + "backups:\n  password: SHOP_RESTIC\n  repositories:\n" + repositories)
    return spec


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    monkeypatch.setenv("SHOP_RESTIC", PASSWORD)
    monkeypatch.setenv("S3_ID", KEY_ID)
    monkeypatch.setenv("S3_KEY", SECRET)


@pytest.mark.slow
def test_each_repository_shows_its_newest_snapshot_and_age_and_a_dead_one_fails(
    s3_server: S3Server, tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3_server.bucket("cli-backups")
    repos = (
        "    - {name: dir, type: local, path: repo}\n"
        f"    - {{name: s3, type: s3, endpoint: '{s3_server.endpoint}', bucket: {bucket}, prefix: shop,"
        " access_key: S3_ID, secret_key: S3_KEY}\n"
    )
    spec = write_spec(tmp_path, repos)
    here = DirectTransport(tmp_path)
    keys = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    for repo in (
        Repository("dir", str(tmp_path / "repo"), "local"),
        Repository("s3", f"s3:{s3_server.endpoint}/{bucket}/shop", "aws", keys),
    ):
        restic = Restic(repo, PASSWORD, here)
        restic.init()
        write_files(tmp_path / "data", {"f": repo.name})
        restic.backup(str(tmp_path / "data"), site="a", app="shop", service="web")

    assert run(["--json", "-f", str(spec), "backups", "--check"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    assert [(r["repository"], r["ok"], r["checked"], r["snapshots"]) for r in doc["repositories"]] == [
        ("dir", True, True, 1),
        ("s3", True, True, 1),
    ]
    newest = doc["newest"]["web"]
    assert newest["repository"] == "s3" and newest["site"] == "a" and 0 <= newest["age_seconds"] < 120
    assert PASSWORD not in json.dumps(doc) and SECRET not in json.dumps(doc)

    dead = f"    - {{name: gone, type: s3, endpoint: 'http://127.0.0.1:{free_port()}', bucket: bkt, access_key: S3_ID, secret_key: S3_KEY, deadline: 3}}\n"
    spec = write_spec(tmp_path, repos + dead)
    assert run(["--no-color", "-f", str(spec), "backups"]) == 1
    out = capsys.readouterr()
    assert "age (RPO now)" in out.out and "failed (transient)" in out.out
    assert out.out.count(" web ") == 2  # the two live repositories still answer
    assert "gone" in out.err and "connection refused" in out.err


def test_a_missing_restic_password_is_exit_2_naming_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHOP_RESTIC", raising=False)
    spec = write_spec(tmp_path, "    - {name: dir, type: local, path: repo}\n")
    assert run(["--no-color", "-f", str(spec), "backups"]) == 2
    err = capsys.readouterr().err
    assert "the restic password secret SHOP_RESTIC is not set" in err and "export SHOP_RESTIC=" in err


def test_an_unknown_repository_type_is_a_located_spec_error(
    tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, "    - {name: dir, type: ftp, path: repo}\n")
    assert run(["--no-color", "-f", str(spec), "backups"]) == 2
    err = capsys.readouterr().err
    assert "deplat.yaml:16:25:" in err and "backups.repositories[0].type: 'ftp' is not one of" in err
