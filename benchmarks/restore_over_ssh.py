"""Data onto a warm cloud site over SSH: a backup taken ON one "VM" and restored ON another, end to
end through deplat's own code (``deplat.failover.data.back_up`` / ``restore`` with the real
``PulumiDriver`` reaching each site over SSH).

    python benchmarks/restore_over_ssh.py [--sizes 100,1000] [--runs 1]

Each "VM" is a real sshd on its own loopback address (tests/support/cloud_vm.py); restic runs on
it, over SSH, against two S3 repositories on moto's server (loopback). The service's volume holds
SIZE MB of 1 MB files (90% random, 10% zeros, as in backup_restore.py). The repositories exist
before (the first periodic backup made them: ``restic init`` costs ~3 s each, once). Times, each
taken on a VM over SSH into both repositories: a full backup of SIZE MB; an incremental one after 1%
of the files changed (what a planned failover's final backup sends); then the restore on the warm
site: the service stopped, restic restore into a fresh folder, the swap, the service started and its
health check passing on the VM.
What is FAKE here: ``systemctl`` on the VMs (no systemd runs here; the fake starts the service as a
real process) and the stack outputs (no Pulumi stack exists). No cloud network: loopback figures are
a floor for a real cross-provider restore, which is bounded by the link to the object storage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from backup_restore import make_data, touch_one_percent  # noqa: E402

from deplat.failover import data  # noqa: E402
from deplat.remote import app_key  # noqa: E402
from deplat.secrets import SecretStore  # noqa: E402
from deplat.spec.loader import load_spec  # noqa: E402
from tests.remote.test_data_over_ssh import ENV, SPEC, OutputsDriver  # noqa: E402
from tests.support.cloud_vm import cloud_vm  # noqa: E402
from tests.support.object_storage import moto_s3  # noqa: E402

# Its own addresses and port: the tests of tests/remote/ may run meanwhile.
A, B, PORT = "127.0.0.71", "127.0.0.72", 18491


def one_run(work: Path, endpoint: str, s3: object, megabytes: int, run: int) -> dict[str, float]:
    bucket = f"bench{megabytes}r{run}"
    s3.bucket(f"{bucket}-1")  # type: ignore[attr-defined]
    s3.bucket(f"{bucket}-2")  # type: ignore[attr-defined]
    path = work / "app" / "deplat.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(SPEC.format(port=PORT, endpoint=endpoint, bucket=bucket))
    spec = load_spec(path)
    secrets = SecretStore(spec, environ=ENV)
    line = app_key(spec, secrets).public_line
    with ExitStack() as stack:
        a = stack.enter_context(cloud_vm(work / "vm-a", A, line, spec))
        b = stack.enter_context(cloud_vm(work / "vm-b", B, line, spec))
        primary = OutputsDriver(spec, secrets, a)
        a.volume("web").mkdir(parents=True)
        (a.volume("web") / "book.jsonl").write_text('{"entry": "one"}\n')
        a.start("web")
        data.back_up(spec, "hetzner-a", secrets=secrets, driver=primary)  # the repositories made
        b.volume("web").mkdir(parents=True)
        (b.volume("web") / "book.jsonl").write_text('{"entry": "stale"}\n')
        b.start("web")
        make_data(a.volume("web") / "files", megabytes)
        started = time.monotonic()
        data.back_up(spec, "hetzner-a", secrets=secrets, driver=primary)
        full = time.monotonic() - started
        touch_one_percent(a.volume("web") / "files")
        started = time.monotonic()
        data.back_up(spec, "hetzner-a", secrets=secrets, driver=primary)
        incremental = time.monotonic() - started
        started = time.monotonic()
        [item] = data.restore(
            spec,
            "gcp-b",
            reference_time=time.time(),
            secrets=secrets,
            driver=OutputsDriver(spec, secrets, b),
            timeout=3600,
        )
        restored = time.monotonic() - started
        assert item["started"] is True, item
        size = sum(p.stat().st_size for p in (b.volume("web") / "files").iterdir())
        assert size == sum(p.stat().st_size for p in (a.volume("web") / "files").iterdir()), "bytes differ"
    return {"full_s": full, "incremental_s": incremental, "restore_s": restored}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100", help="MB of service data, comma-separated")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, moto_s3(Path(tmp) / "moto.log") as s3:
        for megabytes in (int(s) for s in args.sizes.split(",")):
            runs = []
            for run in range(args.runs):
                work = Path(tmp) / f"{megabytes}-{run}"
                runs.append(one_run(work, s3.endpoint, s3, megabytes, run))
                shutil.rmtree(work, ignore_errors=True)
            full, incremental, restore = (
                statistics.median(r[key] for r in runs) for key in ("full_s", "incremental_s", "restore_s")
            )
            rows.append(
                {
                    "megabytes": megabytes,
                    "runs": args.runs,
                    "full_backup_on_primary_s": round(full, 2),
                    "incremental_backup_on_primary_s": round(incremental, 2),
                    "restore_on_warm_site_s": round(restore, 2),
                    "restore_mb_per_s": round(megabytes / restore, 1),
                }
            )
            print(json.dumps(rows[-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
