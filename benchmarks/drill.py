"""Benchmark: `deplat drill` with a 1 s probe interval and 3 failures to go down.

    python benchmarks/drill.py [--runs 3] [--mode suspended] [--bind] [--suspend-at random|after-backup]

Each run writes the guestbook spec (three local sites on a fresh loopback /24, probe_interval 1,
probe timeout --timeout (default 0.5 s), failures_to_down 3, backups every 1 s) into a temp dir
and runs the real command,
``python -m deplat drill --json``, through the local front door (default) or a real BIND
(``--bind``, needs ``named``). Prints detection time and RTO per run and min / median / max.
Targets: detection < 3.5 s, RTO < 5 s. The RPO depends on where in the backup cycle the site is lost:
``random`` (the default) is the honest figure, ``after-backup`` the best case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.failover.conftest import Guestbook  # noqa: E402


def one_run(mode: str, use_bind: bool, timeout: float, suspend_at: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="deplat-drill-bench-") as tmp:
        book = Guestbook(Path(tmp))
        env = dict(os.environ)
        ns = None
        try:
            dns = []
            if use_bind:
                from tests.support.bind import start_bind

                ns = start_bind(Path(tmp) / "bind")
                dns = [ns.dns_entry("ns-a")]
                env.update(ns.secret_env())
            book.write(interval=1.0, timeout=timeout, failures=3, successes=2, backups=1.0, dns=dns)
            doc = yaml.safe_load(book.path.read_text())
            assert doc["failover"]["probe_interval"] == 1.0 and doc["failover"]["failures_to_down"] == 3
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "deplat",
                    "-f",
                    str(book.path),
                    "--json",
                    "drill",
                    "--mode",
                    mode,
                    "--suspend-at",
                    suspend_at,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
            )
            if proc.returncode != 0:
                raise SystemExit(f"drill failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout[-2000:]}")
            return json.loads(proc.stdout)
        finally:
            book.env = env
            book.destroy_all()
            if ns is not None:
                ns.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", default="suspended", choices=["suspended", "refused", "blackhole", "slow"])
    parser.add_argument("--bind", action="store_true", help="switch a real BIND instead of the front door")
    parser.add_argument(
        "--timeout", type=float, default=0.5, help="probe timeout (the guestbook example's is 0.5 s)"
    )
    parser.add_argument("--suspend-at", default="random", choices=["random", "after-backup"])
    args = parser.parse_args()
    detections, rtos, rpos = [], [], []
    for i in range(args.runs):
        report = one_run(args.mode, args.bind, args.timeout, args.suspend_at)
        detections.append(report["detection_seconds"])
        rtos.append(report["rto_seconds"])
        rpos.append(report["rpo_seconds"])
        print(
            f"run {i + 1}: {args.mode} via {report['switch']}: "
            f"detection {report['detection_seconds']:.2f}s RTO {report['rto_seconds']:.2f}s "
            f"RPO {report['rpo_seconds']:.2f}s data {report['data_check']['ok']} "
            f"users failed {report['users']['failed']}/{report['users']['requests']}"
        )

    def line(name: str, values: list[float], target: float | None) -> str:
        median = statistics.median(values)
        text = f"{name:<9} min {min(values):.2f}s  median {median:.2f}s  max {max(values):.2f}s"
        return text + (
            f"  (target < {target:g}s: {'met' if max(values) < target else 'NOT met'})" if target else ""
        )

    print(line("detection", detections, 3.5))
    print(line("RTO", rtos, 5.0))
    print(line("RPO", rpos, None))


if __name__ == "__main__":
    main()
