"""Backup and restore times through deplat's restic wrapper, and a planned failover's RPO and time.

    python benchmarks/backup_restore.py [--sizes 100,1000] [--targets local,s3] [--no-failover]

For each size (MB of service data: files of 1 MB, 90% random, 10% zeros) and each repository
(a local directory; moto's S3 server on loopback): the first backup, an incremental one after
changing 1% of the files, and a restore of the newest snapshot into an empty folder (restic
restore, then the atomic swap). Then a planned failover on two local guestbook sites: a write
acknowledged right before it must be on the new primary (RPO 0 s), and how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deplat.data.restic import Repository, Restic  # noqa: E402
from deplat.transport import DirectTransport  # noqa: E402

PASSWORD = "benchmark password"


def make_data(folder: Path, megabytes: int) -> None:
    folder.mkdir(parents=True)
    for i in range(megabytes):
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(900_000) + bytes(124_576))


def touch_one_percent(folder: Path) -> None:
    files = sorted(folder.iterdir())
    for path in files[:: max(1, len(files) // max(1, len(files) // 100))][: max(1, len(files) // 100)]:
        path.write_bytes(os.urandom(900_000) + bytes(124_576))


def timed(fn) -> tuple[float, object]:
    started = time.monotonic()
    value = fn()
    return time.monotonic() - started, value


def bench_repository(repo: Repository, data: Path, work: Path, megabytes: int) -> dict[str, object]:
    here = DirectTransport(work)
    restic = Restic(repo, PASSWORD, here)
    restic.init()
    first, _ = timed(lambda: restic.backup(str(data), site="a", app="bench", service="web", timeout=3600))
    touch_one_percent(data)
    incremental, done2 = timed(
        lambda: restic.backup(str(data), site="a", app="bench", service="web", timeout=3600)
    )
    newest = restic.latest(app="bench", service="web")
    assert newest is not None
    target = work / f"restored-{repo.name}-{megabytes}"
    restore, _ = timed(lambda: restic.restore(newest.id, str(target), timeout=3600))
    restored = sum(p.stat().st_size for p in target.iterdir())
    assert restored == sum(p.stat().st_size for p in data.iterdir())
    shutil.rmtree(target)
    return {
        "repository": repo.name,
        "megabytes": megabytes,
        "first_backup_s": round(first, 2),
        "incremental_backup_s": round(incremental, 2),
        "incremental_added_bytes": done2.added,  # type: ignore[attr-defined]
        "restore_s": round(restore, 2),
    }


def planned_failover(work: Path, runs: int) -> dict[str, object]:
    """Two local guestbook sites; a write acknowledged through the front door right before each
    `failover --to`; afterwards it must be on the new primary. Fails over back and forth."""
    import httpx

    from deplat.failover import frontdoor
    from deplat.failover.run import run_failover
    from deplat.state import load_active, save_active
    from tests.failover.conftest import Guestbook

    (work / "failover").mkdir()
    book = Guestbook(work / "failover")
    book.write(roles=("primary", "warm"))
    times: list[float] = []
    rpos: list[float] = []
    lost = 0
    try:
        book.up("site-a", "site-b")
        spec = book.spec
        with frontdoor.FrontDoor(spec).start("site-a") as door:
            front = door.urls[0]
            for i in range(runs):
                to = "site-b" if i % 2 == 0 else "site-a"
                message = f"acknowledged before failover {i}"
                answer = httpx.post(
                    front + "/entries", json={"name": "b", "message": message}, trust_env=False, timeout=5
                )
                assert answer.status_code == 201
                took, result = timed(lambda to=to: run_failover(spec, book.secrets(), to=to))
                entries = httpx.get(front + "/entries", trust_env=False, timeout=5).json()
                lost += message not in [e["message"] for e in entries]
                times.append(took)
                rpos.append(result.rpo_seconds if result.rpo_seconds is not None else float("nan"))
                active = load_active(spec)
                active.fenced.clear()  # let the next run fail back onto the site just left (a rejoin)
                save_active(spec, active)
                book.up("site-a", "site-b")  # the left site's services were stopped by the failover
    finally:
        book.destroy_all()
    return {
        "planned_failovers": runs,
        "acknowledged_writes_lost": lost,
        "rpo_s": [round(r, 3) for r in rpos],
        "time_s": [round(t, 2) for t in times],
        "median_time_s": round(sorted(times)[len(times) // 2], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000", help="MB of data, comma separated")
    parser.add_argument("--targets", default="local,s3", help="local, s3 (moto server on loopback)")
    parser.add_argument("--failovers", type=int, default=3, help="planned failovers to time (0: none)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    targets = args.targets.split(",")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="deplat-bench-") as tmp:
        work = Path(tmp)
        s3 = None
        if "s3" in targets:
            from tests.support.object_storage import KEY_ID, SECRET, moto_s3

            s3 = moto_s3(work / "moto.log")
            server = s3.__enter__()
        try:
            for megabytes in sizes:
                data = work / f"data-{megabytes}"
                make_data(data, megabytes)
                for target in targets:
                    shutil.rmtree(data)
                    make_data(data, megabytes)
                    if target == "local":
                        repo = Repository("local", str(work / f"repo-{megabytes}"), "local", deadline=3600)
                    else:
                        bucket = server.bucket(f"bench-{megabytes}")
                        keys = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
                        repo = Repository(
                            "s3", f"s3:{server.endpoint}/{bucket}/b", "aws", keys, deadline=3600
                        )
                    result = bench_repository(repo, data, work, megabytes)
                    results.append(result)
                    print(json.dumps(result), flush=True)
                shutil.rmtree(data)
        finally:
            if s3 is not None:
                s3.__exit__(None, None, None)
        if args.failovers:
            figures = planned_failover(work, args.failovers)
            print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
