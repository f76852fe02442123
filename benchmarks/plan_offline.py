"""Benchmark: ``deplat plan --offline`` wall time and peak memory.

Runs the real CLI in a fresh process (so SDK import costs count, as they do for a user) on
``examples/cloud`` (three sites: AWS, Hetzner, GCP) and on generated specs with 10, 50 and 100
services on the same three sites. Target: under 3 s for examples/cloud on a 2-core machine.

    python benchmarks/plan_offline.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cloud" / "deplat.yaml"


def spec_with_services(count: int) -> dict:
    """examples/cloud with ``count`` services: one public web front, the rest private workers."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    services = {}
    for i in range(count):
        port = 8080 + i
        services[f"svc{i}"] = {
            "image": f"ghcr.io/acme/svc{i}:1.{i}",
            "command": ["/app/run", "--port", str(port)],
            "ports": [{"port": port, "public": i == 0}],
            "env": {"SERVICE": f"svc{i}", "LOG_LEVEL": "info"},
            "secrets": ["GUESTBOOK_ADMIN_TOKEN"] if i % 5 == 0 else [],
            "volumes": [{"name": "data", "path": "/data", "size": 1}] if i % 3 == 0 else [],
        }
    doc["services"] = services
    return doc


def run_once(spec: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `deplat plan --offline --json` in a fresh process."""
    argv = [sys.executable, "-m", "deplat", "plan", "--offline", "--json", "-f", str(spec)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=spec.parent)
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: wait4 gives its peak RSS
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"deplat plan failed on {spec}:\n{err.read().decode()}")
        out.seek(0)
        json.loads(out.read())  # a complete document came out
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def measure(label: str, spec: Path, repeat: int) -> dict:
    runs = [run_once(spec) for _ in range(repeat)]
    walls = [w for w, _ in runs]
    peaks = [p for _, p in runs]
    return {
        "case": label,
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "peak_rss_mib": round(max(peaks), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        example = Path(tmp) / "cloud" / "deplat.yaml"
        example.parent.mkdir()
        example.write_text(EXAMPLE.read_text())
        results.append(measure("examples/cloud (3 sites, 1 service)", example, args.repeat))
        for count in (10, 50, 100):
            path = Path(tmp) / f"s{count}" / "deplat.yaml"
            path.parent.mkdir()
            path.write_text(yaml.safe_dump(spec_with_services(count), sort_keys=False))
            results.append(measure(f"3 sites, {count} services", path, args.repeat))
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))
        return
    print(f"deplat plan --offline, {args.repeat} runs each, {os.cpu_count()} CPUs")
    print(f"{'case':40} {'median s':>9} {'min s':>7} {'peak MiB':>9}")
    for r in results:
        print(f"{r['case']:40} {r['wall_s_median']:>9} {r['wall_s_min']:>7} {r['peak_rss_mib']:>9}")


if __name__ == "__main__":
    main()
