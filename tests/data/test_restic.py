"""restic through deplat's wrapper, against a local directory and moto's S3 server: backup, list,
restore, retention, check, and the errors a user meets."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from deplat.data.restic import (
    Repository,
    Restic,
    ResticFailed,
    backup_args,
    forget_args,
    newest_per_service,
    parse_snapshots,
    snapshots_args,
)
from deplat.errors import ErrorClass
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.support.trees import read_files, write_files

REPOS = ["local_repo", "s3_repo"]


@pytest.fixture(params=REPOS)
def repo(request: pytest.FixtureRequest) -> Repository:
    return request.getfixturevalue(request.param)


@pytest.mark.slow
def test_commands_carry_no_secret_and_tag_app_site_and_service(s3_repo: Repository) -> None:
    args = backup_args(s3_repo, site="aws-fra", app="shop", service="web", seq=7)
    assert args == [
        *["restic", "-r", s3_repo.url, "backup", "--json", "--host", "aws-fra"],
        *["--tag", "app=shop", "--tag", "service=web", "--tag", "seq=7", "."],
    ]
    assert snapshots_args(s3_repo, app="shop", service="db")[-2:] == ["--tag", "app=shop,service=db"]
    assert forget_args(s3_repo, ["aa", "bb"])[3:] == ["forget", "--prune", "aa", "bb"]
    secret_values = set(s3_repo.env.values())
    assert not secret_values & set(args)
    assert SECRET_NOT_IN_REPR(s3_repo)


def SECRET_NOT_IN_REPR(repo: Repository) -> bool:  # noqa: N802 - reads as a claim
    return all(value not in repr(repo) for value in repo.env.values())


@pytest.mark.slow
def test_backup_list_and_restore_round_trip(repo: Repository, here: DirectTransport, tmp_path: Path) -> None:
    restic = Restic(repo, PASSWORD, here)
    assert restic.init() is True
    assert restic.init() is False  # idempotent
    data = tmp_path / "site-a" / "data" / "web"
    write_files(data, {"guestbook.jsonl": '{"n": 1}\n', "uploads/a.txt": "alpha"})
    started = time.time()
    done = restic.backup(str(data), site="site-a", app="shop", service="web")
    assert done.files == 2 and done.bytes == len('{"n": 1}\n') + 5

    latest = restic.latest(app="shop", service="web")
    assert latest is not None and latest.id.startswith(done.snapshot)
    assert latest.site == "site-a" and latest.service == "web"
    assert started - 1 <= latest.time <= time.time()  # restic's time: when the backup started
    assert restic.latest(app="other", service="web") is None

    target = tmp_path / "site-b" / "data" / "web"
    write_files(target, {"stale.txt": "from before"})
    restic.restore(latest.id, str(target))
    assert read_files(target) == {"guestbook.jsonl": '{"n": 1}\n', "uploads/a.txt": "alpha"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["web"]  # nothing left beside it


@pytest.mark.slow
def test_a_restore_that_fails_leaves_the_old_data_in_place(
    local_repo: Repository, here: DirectTransport, tmp_path: Path
) -> None:
    restic = Restic(local_repo, PASSWORD, here)
    restic.init()
    target = tmp_path / "data" / "web"
    write_files(target, {"keep.txt": "mine"})
    with pytest.raises(ResticFailed, match="restore of 00000000 failed"):
        restic.restore("0000000000000000000000000000000000000000000000000000000000000000", str(target))
    assert read_files(target) == {"keep.txt": "mine"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["web"]


@pytest.mark.slow
def test_retention_keeps_the_newest_per_site_and_service(
    repo: Repository, here: DirectTransport, tmp_path: Path
) -> None:
    restic = Restic(repo, PASSWORD, here)
    restic.init()
    for service in ("web", "db"):
        data = tmp_path / service
        for i in range(3):
            write_files(data, {"n.txt": f"{service} {i}"})
            restic.backup(str(data), site="site-a", app="shop", service=service)
    removed = restic.forget(app="shop", keep=2)
    assert removed == 2
    left = restic.snapshots(app="shop")
    assert sorted(s.service or "" for s in left) == ["db", "db", "web", "web"]
    target = tmp_path / "restored"
    newest = newest_per_service(left)
    restic.restore(newest["db"].id, str(target))
    assert read_files(target) == {"n.txt": "db 2"}
    restic.check()


@pytest.mark.slow
def test_check_fails_on_a_damaged_repository(
    local_repo: Repository, here: DirectTransport, tmp_path: Path
) -> None:
    restic = Restic(local_repo, PASSWORD, here)
    restic.init()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(os.urandom(200_000))  # incompressible: its pack is the largest
    restic.backup(str(tmp_path / "d"), site="s", app="shop", service="web")
    restic.check()
    packs = [p for p in (Path(local_repo.url) / "data").rglob("*") if p.is_file()]
    pack = max(packs, key=lambda p: p.stat().st_size)  # the file's data, not a tree restic walks
    pack.write_bytes(pack.read_bytes()[:10])  # a pack cut short, as by a full disk
    with pytest.raises(ResticFailed, match="repository dir: check failed"):
        restic.check()


@pytest.mark.slow
def test_a_wrong_password_is_input_naming_the_secret_setting(
    local_repo: Repository, here: DirectTransport
) -> None:
    Restic(local_repo, PASSWORD, here).init()
    with pytest.raises(ResticFailed) as err:
        Restic(local_repo, "not the password", here).snapshots()
    assert err.value.error_class is ErrorClass.INPUT
    assert "backups.password" in (err.value.hint or "")
    assert "not the password" not in err.value.message


def test_an_absent_repository_says_no_backup_was_written_there(
    local_repo: Repository, here: DirectTransport
) -> None:
    with pytest.raises(ResticFailed, match=r"no restic repository at .* yet"):
        Restic(local_repo, PASSWORD, here).snapshots()


def test_a_refused_endpoint_fails_transient_at_once(here: DirectTransport) -> None:
    from tests.support.object_storage import free_port

    dead = Repository(
        "dead",
        f"s3:http://127.0.0.1:{free_port()}/bucket/app",
        "aws",
        {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        deadline=10,
    )
    started = time.monotonic()
    with pytest.raises(ResticFailed) as err:
        Restic(dead, PASSWORD, here).snapshots()
    assert err.value.error_class is ErrorClass.TRANSIENT
    assert time.monotonic() - started < 5


def test_snapshots_json_parses_nanosecond_times_oldest_first() -> None:
    text = (
        '[{"time":"2026-12-01T04:23:42.752484533Z","hostname":"b","tags":["app=x","service=web"],'
        '"id":"bb","short_id":"bb"},'
        '{"time":"2026-12-01T05:23:42+01:00","hostname":"a","tags":["app=x","service=web"],"id":"aa"}]'
    )
    snaps = parse_snapshots(text, "r")
    assert [s.id for s in snaps] == ["aa", "bb"]
    assert snaps[1].time - snaps[0].time == pytest.approx(0.752484533)
    assert snaps[0].short_id == "aa" and snaps[0].repository == "r"
