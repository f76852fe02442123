"""The primary's lease in the repositories (deplat.data.lease): written by each failover to every
repository that answers, read back as the newest marker by sequence; never seen as a service's data."""

from __future__ import annotations

import pytest

from deplat.data import lease
from deplat.data.restic import Repository, Restic, newest_per_service
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.support.object_storage import free_port
from tests.support.trees import write_files


@pytest.mark.slow
def test_each_failover_names_the_new_primary_in_every_repository_that_answers(
    s3_repo: Repository, local_repo: Repository, here: DirectTransport
) -> None:
    keys = dict(s3_repo.env)
    dead = Repository("gone", f"s3:http://127.0.0.1:{free_port()}/bkt/shop", "gcp", keys, deadline=3)
    first = lease.grant([s3_repo, dead, local_repo], PASSWORD, here, app="shop", site="hz-c")
    assert first.written == [s3_repo.name, local_repo.name]
    assert list(first.skipped) == ["gone"] and first.seq == 1
    back = lease.grant([s3_repo, local_repo], PASSWORD, here, app="shop", site="aws-a")
    assert back.seq == 2
    for repo in (s3_repo, local_repo):
        markers = Restic(repo, PASSWORD, here).snapshots(app="shop", tag=lease.TAG)
        holder = lease.holder(markers)
        assert holder is not None and holder.site == "aws-a" and holder.seq == 2


@pytest.mark.slow
def test_a_lease_marker_is_never_a_services_snapshot(local_repo: Repository, here: DirectTransport) -> None:
    restic = Restic(local_repo, PASSWORD, here)
    restic.init()
    data = here.root / "web"
    write_files(data, {"rows.txt": "1\n"})
    restic.backup(str(data), site="aws-a", app="shop", service="web")
    lease.grant([local_repo], PASSWORD, here, app="shop", site="hz-c")
    everything = restic.snapshots(app="shop")
    assert len(everything) == 2
    newest = newest_per_service(everything)
    assert list(newest) == ["web"] and newest["web"].site == "aws-a"
    assert restic.snapshots(app="shop", service="web")[-1].site == "aws-a"
