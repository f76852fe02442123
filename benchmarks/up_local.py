"""Benchmark: ``deplat up`` of the local guestbook, and ``deplat status`` latency.

    python benchmarks/up_local.py [--runs 5] [--as-is]

Copies examples/guestbook (deplat.yaml + app.py) into a temp dir, moves its sites to free loopback
addresses and a free port (``--as-is`` keeps 127.0.0.11-13:18080), then measures, each over
``--runs`` cold starts (everything destroyed in between):

- ``deplat up -f COPY --yes``: wall time from launch until every site it stood up answers its health
  check (the sites ``up`` covers by default: primary and warm; cold standbys are skipped unless named);
- the same with every site named (``--site local-a --site local-b --site local-c``);
- a second ``up`` with nothing changed;
- ``deplat status -f COPY`` and ``deplat status --json``;
- ``LocalDriver.up`` in-process for one site (no CLI start-up).
Target: up under 3 s.
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GUESTBOOK = ROOT / "examples" / "guestbook"
DEPLAT = [sys.executable, "-m", "deplat"]


def free_layout(data: dict) -> None:
    base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    addresses = [f"{base}.{10 + i}" for i in range(len(data["sites"]))]
    with socket.socket() as s:
        s.bind((addresses[0], 0))
        port = s.getsockname()[1]
    web = data["services"]["web"]
    web["ports"][0]["port"] = port
    web["health"]["port"] = port
    for site, address in zip(data["sites"], addresses, strict=True):
        site["options"]["address"] = address


def healthy(url_host: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(url_host, port, timeout=1)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def deplat(spec: Path, *args: str) -> None:
    done = subprocess.run([*DEPLAT, *args, "-f", str(spec)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"deplat {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def timed(action: Callable[[], None], until: Callable[[], bool] = lambda: True) -> float:
    started = time.perf_counter()
    action()
    deadline = started + 30
    while not until():
        if time.perf_counter() > deadline:
            raise SystemExit("sites did not answer their health checks within 30 s")
        time.sleep(0.005)
    return time.perf_counter() - started


def report(name: str, seconds: list[float]) -> None:
    print(
        f"{name:<44} median {statistics.median(seconds) * 1000:7.0f} ms   "
        f"min {min(seconds) * 1000:7.0f} ms   max {max(seconds) * 1000:7.0f} ms   (n={len(seconds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--as-is", action="store_true", help="keep the example's addresses and port")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deplat-bench-"))
    try:
        shutil.copy(GUESTBOOK / "app.py", work / "app.py")
        data = yaml.safe_load((GUESTBOOK / "deplat.yaml").read_text(encoding="utf-8"))
        if not args.as_is:
            free_layout(data)
        spec = work / "deplat.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        port = data["services"]["web"]["health"]["port"]
        path = data["services"]["web"]["health"]["path"]
        by_role = {s["name"]: (s["role"], s["options"]["address"]) for s in data["sites"]}
        default_sites = [addr for role, addr in by_role.values() if role != "cold"]
        all_sites = [addr for _, addr in by_role.values()]
        every = [arg for name in by_role for arg in ("--site", name)]

        def all_healthy(addresses: list[str]) -> Callable[[], bool]:
            return lambda: all(healthy(a, port, path) for a in addresses)

        def destroy() -> None:
            deplat(spec, "destroy", "--yes")

        up_default, up_every, up_again, status, status_json, driver_up = [], [], [], [], [], []
        for _ in range(args.runs):
            up_default.append(timed(lambda: deplat(spec, "up", "--yes"), all_healthy(default_sites)))
            up_again.append(timed(lambda: deplat(spec, "up", "--yes")))
            status.append(timed(lambda: deplat(spec, "status")))
            status_json.append(timed(lambda: deplat(spec, "status", "--json")))
            destroy()
            up_every.append(timed(lambda: deplat(spec, "up", "--yes", *every), all_healthy(all_sites)))
            destroy()

        from deplat.local.driver import LocalDriver
        from deplat.secrets import SecretStore
        from deplat.spec.loader import load_spec

        loaded = load_spec(spec)
        driver = LocalDriver(loaded, SecretStore(loaded))
        site = loaded.sites[0]
        for _ in range(args.runs):
            driver_up.append(timed(lambda: driver.up(site)))
            driver.destroy(site)

        print(f"guestbook copy: {spec} (port {port}; sites {', '.join(all_sites)})")
        report("deplat up --yes (primary+warm), to healthy", up_default)
        report("deplat up --yes, all 3 sites named", up_every)
        report("deplat up --yes again (no changes)", up_again)
        report("deplat status", status)
        report("deplat status --json", status_json)
        report("LocalDriver.up, one site, in-process", driver_up)
    finally:
        subprocess.run([*DEPLAT, "destroy", "--yes", "-f", str(work / "deplat.yaml")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
