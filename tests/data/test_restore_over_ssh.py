"""A warm site reached over SSH: restic runs ON the site (as it will on a cloud VM), the data comes
from a repository on another provider (moto's S3), and no secret crosses in argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deplat.data.restic import Repository, Restic
from deplat.transport import DirectTransport
from deplat.transport.keys import KnownHosts, generate
from deplat.transport.ssh import SshTransport
from tests.data.conftest import PASSWORD
from tests.support.sshd import SSHD, sshd
from tests.support.trees import read_files, write_files

pytestmark = pytest.mark.skipif(
    not SSHD.exists() or os.getuid() != 0, reason="needs openssh-server and root for sshd on loopback"
)


@pytest.mark.slow
def test_restore_onto_a_warm_site_over_ssh_from_another_providers_repository(
    s3_repo: Repository, here: DirectTransport, tmp_path: Path
) -> None:
    primary_data = tmp_path / "primary" / "data" / "web"
    write_files(primary_data, {"book.jsonl": '{"entry": 1}\n{"entry": 2}\n', "img/x.bin": "xx"})
    on_primary = Restic(s3_repo, PASSWORD, here)
    on_primary.init()
    on_primary.backup(str(primary_data), site="aws-a", app="shop", service="web")

    key = generate("shop")
    warm = tmp_path / "warm" / "data" / "web"
    write_files(warm, {"book.jsonl": '{"entry": "stale"}\n'})
    with (
        sshd(tmp_path / "sshd", [key.public_line]) as server,
        SshTransport(
            server.host, key, KnownHosts(tmp_path / "kh"), port=server.port, user=server.user
        ) as ssh,
    ):
        on_warm = Restic(s3_repo, PASSWORD, ssh)
        newest = on_warm.latest(app="shop", service="web")
        assert newest is not None and newest.site == "aws-a"
        on_warm.restore(newest.id, str(warm))
        log = (tmp_path / "sshd" / "sshd.log").read_text()

    assert read_files(warm) == {"book.jsonl": '{"entry": 1}\n{"entry": 2}\n', "img/x.bin": "xx"}
    assert PASSWORD not in log and s3_repo.env["AWS_SECRET_ACCESS_KEY"] not in log
