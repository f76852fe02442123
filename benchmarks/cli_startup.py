"""How fast `deplat --help` and `deplat validate` start, and proof that no provider SDK is imported.

    python benchmarks/cli_startup.py [--runs 15]

Targets (issue 2): `deplat --help` < 0.3 s, `deplat validate` on a 200-service spec < 0.5 s;
(issue 13) `deplat --help` within 2x of `python -c "import typer, rich"`, measured alike.
Reports the median and worst wall time of fresh processes, and the modules `python -X importtime`
saw: none of pulumi, pulumi_aws, pulumi_gcp, pulumi_hcloud, boto3 may appear. Run it from the
environment you measure (a fresh venv: `pip install -e .`), so `deplat` is that venv's script.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_hcloud", "boto3", "botocore", "httpx")


def big_spec(services: int) -> dict:
    spec = yaml.safe_load((ROOT / "examples/cloud/deplat.yaml").read_text())
    template = spec["services"]["web"]
    spec["services"] = {}
    for i in range(services):
        svc = dict(template)
        svc["ports"] = [{"port": 8000 + i, "public": i % 2 == 0}]
        svc["health"] = {"port": 8000 + i, "path": "/healthz", "expect": 200, "timeout": 2}
        spec["services"][f"svc-{i}"] = svc
    return spec


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def imported(cmd: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    deplat = shutil.which("deplat") or sys.exit("deplat is not installed: pip install -e .")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "deplat.yaml"
        spec.write_text(yaml.safe_dump(big_spec(200), sort_keys=False))
        cases = {
            "deplat --help": ([deplat, "--help"], 0.3),
            "deplat validate (200 services)": ([deplat, "-f", str(spec), "validate"], 0.5),
        }
        base = timed([sys.executable, "-c", "import typer, rich"], args.runs)
        help_times = timed([deplat, "--help"], args.runs)
        ratio = statistics.median(help_times) / statistics.median(base)
        print(
            f"{'import typer, rich':34s} median {statistics.median(base) * 1000:6.0f} ms\n"
            f"{'deplat --help / import typer, rich':34s} {ratio:.2f}  target 2.00  "
            f"{'ok' if ratio <= 2 else 'OVER TARGET'}"
        )
        for name, (cmd, target) in cases.items():
            times = timed(cmd, args.runs)
            med, worst = statistics.median(times), max(times)
            verdict = "ok" if med < target else "OVER TARGET"
            print(
                f"{name:34s} median {med * 1000:6.0f} ms  worst {worst * 1000:6.0f} ms  "
                f"target {target * 1000:.0f} ms  {verdict}"
            )
            heavy = sorted(set(HEAVY) & imported(["-m", "deplat", *cmd[1:]]))
            print(f"{'':34s} heavy modules imported: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
