"""The spec's repositories as restic URLs and credentials, and the survey across them: each
repository under its own deadline, so a dead one never holds up the restore from a live one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.data import repositories as repos
from deplat.data.restic import Repository, Restic
from deplat.errors import ErrorClass, InputError
from deplat.secrets import SecretStore
from deplat.spec.loader import load_text
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.support.object_storage import free_port
from tests.support.trees import read_files, write_files

SPEC = """\
version: 1
app: shop
services:
  web:
    image: x
    ports: [{port: 8080, public: true}]
    volumes: [{name: data, path: /data}]
domain: {zone: shop.test, names: [shop.test]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-west-1}
  - {name: hz-b, provider: hcloud, role: warm, region: fsn1}
backups:
  password: SHOP_RESTIC
  repositories:
    - {name: s3-eu, type: s3, bucket: shop-bk, region: eu-west-1, prefix: /shop/, access_key: S3_ID, secret_key: S3_KEY}
    - {name: gcs, type: gcs, bucket: shop-gcs, access_key: GCS_ID, secret_key: GCS_KEY}
    - {name: hz, type: hcloud, bucket: shop-hz, region: nbg1, access_key: HZ_ID, secret_key: HZ_KEY}
    - {name: minio, type: s3, endpoint: "https://minio.example.net:9000", bucket: b, access_key: S3_ID, secret_key: S3_KEY}
"""
ENV = {n: f"value-of-{n.lower()}" for n in ("S3_ID", "S3_KEY", "GCS_ID", "GCS_KEY", "HZ_ID", "HZ_KEY")}


def test_each_repository_type_becomes_a_restic_url_and_credentials_by_environment() -> None:
    spec = load_text(SPEC)
    found = {r.name: r for r in repos.repositories(spec, SecretStore(spec, environ=ENV))}
    assert found["s3-eu"].url == "s3:https://s3.eu-west-1.amazonaws.com/shop-bk/shop"
    assert found["gcs"].url == "s3:https://storage.googleapis.com/shop-gcs"
    assert found["hz"].url == "s3:https://nbg1.your-objectstorage.com/shop-hz"
    assert found["minio"].url == "s3:https://minio.example.net:9000/b"
    assert dict(found["hz"].env) == {
        "AWS_ACCESS_KEY_ID": "value-of-hz_id",
        "AWS_SECRET_ACCESS_KEY": "value-of-hz_key",
        "AWS_DEFAULT_REGION": "nbg1",
    }
    assert [found[n].held_by for n in ("s3-eu", "gcs", "hz", "minio")] == [
        "aws",
        "gcp",
        "hcloud",
        "minio.example.net",
    ]


def test_a_missing_credential_names_the_secret_and_the_repository() -> None:
    spec = load_text(SPEC)
    env = {k: v for k, v in ENV.items() if k != "HZ_KEY"}
    with pytest.raises(InputError, match=r"secret HZ_KEY \(credentials of the backup repository hz\)"):
        repos.repositories(spec, SecretStore(spec, environ=env))


def test_a_missing_restic_password_names_its_secret() -> None:
    spec = load_text(SPEC)
    with pytest.raises(InputError) as err:
        repos.password(spec, SecretStore(spec, environ=ENV))
    assert err.value.exit_code == 2
    assert "SHOP_RESTIC" in err.value.message and "export SHOP_RESTIC=" in (err.value.hint or "")


def test_without_declared_repositories_local_sites_use_the_store_and_cloud_sites_are_refused() -> None:
    text = SPEC[: SPEC.index("backups:")]
    spec = load_text(text)
    (local,) = repos.repositories(spec, SecretStore(spec, environ={}))
    assert local.url.endswith("/.deplat/backups/restic") and local.held_by == "local"
    with pytest.raises(InputError, match=r"aws site and the spec declares no backups\.repositories"):
        repos.for_site(spec, SecretStore(spec, environ={}), "aws-a")


# --- the survey -------------------------------------------------------------------------------------


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a provider that went dark)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _backed_up(repo: Repository, here: DirectTransport, folder: Path, text: str) -> None:
    restic = Restic(repo, PASSWORD, here)
    restic.init()
    write_files(folder, {"book.txt": text})
    restic.backup(str(folder), site="aws-a", app="shop", service="web")


@pytest.mark.slow
def test_refused_and_silent_repositories_are_skipped_and_the_live_one_serves_the_restore(
    s3_repo: Repository, local_repo: Repository, here: DirectTransport, tmp_path: Path, blackhole: int
) -> None:
    _backed_up(local_repo, here, tmp_path / "v1", "older")
    time.sleep(1.1)
    _backed_up(s3_repo, here, tmp_path / "v2", "newest")
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    refused = Repository("refused", f"s3:http://127.0.0.1:{free_port()}/bkt/shop", "gcp", keys, deadline=2)
    silent = Repository("silent", f"s3:http://127.0.0.1:{blackhole}/bkt/shop", "hcloud", keys, deadline=2)

    started = time.monotonic()
    states = repos.survey([refused, silent, s3_repo, local_repo], PASSWORD, here, app="shop")
    took = time.monotonic() - started

    by_name = {s.repository: s for s in states}
    assert not by_name["refused"].ok and by_name["refused"].error_class is ErrorClass.TRANSIENT
    assert not by_name["silent"].ok and "did not finish within 2s" in (by_name["silent"].error or "")
    assert by_name["s3"].ok and by_name["dir"].ok
    assert took < 2 + 15  # the silent one costs its own deadline, not more (the S3 one may be slow here)
    assert by_name["silent"].seconds < 4

    newest = repos.newest(states, "web")
    assert newest is not None and newest.repository == "s3"
    target = tmp_path / "restored"
    Restic(s3_repo, PASSWORD, here).restore(newest.id, str(target))
    assert read_files(target) == {"book.txt": "newest"}
    assert repos.newest(states, "db") is None


def test_a_cloud_site_needs_repositories_on_two_other_providers_a_located_error() -> None:
    from deplat.errors import SpecError

    lines = SPEC.splitlines(keepends=True)
    only_aws_and_gcp = "".join(
        line for line in lines if "name: hz," not in line and "name: minio" not in line
    )
    with pytest.raises(SpecError) as err:
        load_text(only_aws_and_gcp)
    (problem,) = err.value.problems
    assert (problem.line, problem.path) == (15, "backups.repositories")
    assert problem.message == (
        "site 'aws-a' (aws) needs backups on at least two providers other than its own (has: gcp): "
        "add a repository on another provider"
    )
    missing_bucket = SPEC.replace("bucket: shop-hz, ", "")
    with pytest.raises(SpecError, match="1 problem") as err:
        load_text(missing_bucket)
    assert err.value.problems[0].message == "a hcloud repository needs 'bucket'"
    assert err.value.problems[0].path == "backups.repositories[2]"
