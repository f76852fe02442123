"""Fixtures for the data tests: restic (Debian's), a moto S3 server on loopback, repositories."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.data.restic import Repository
from deplat.transport import DirectTransport
from tests.support.object_storage import KEY_ID, SECRET, S3Server, moto_s3

PASSWORD = "correct horse battery staple"

if shutil.which("restic") is None:  # pragma: no cover - CI installs it (.ci/run)
    pytest.skip("restic is not installed (apt-get install restic)", allow_module_level=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def s3_repo(s3_server: S3Server, request: pytest.FixtureRequest) -> Repository:
    bucket = s3_server.bucket(f"b-{abs(hash(request.node.nodeid)) % 10**10}")
    return Repository(
        name="s3",
        url=f"s3:{s3_server.endpoint}/{bucket}/app",
        held_by="aws",
        env={"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET},
        deadline=30,
    )


@pytest.fixture
def local_repo(tmp_path: Path) -> Repository:
    return Repository(name="dir", url=str(tmp_path / "repo"), held_by="local", deadline=30)


@pytest.fixture
def here(tmp_path: Path) -> DirectTransport:
    return DirectTransport(tmp_path, name="test")
