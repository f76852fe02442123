"""Benchmark: deplat's own overhead around the Pulumi engine, measured against the FAKE `pulumi` CLI.

    python benchmarks/engine_fake.py [--runs 3]

No cloud and no real engine: tests/fakes/bin/pulumi answers in ~50 ms per call, so these figures
are deplat's orchestration plus the Automation API's CLI round trips (how many, and whether sites
overlap), not real deployment times. Measures, each over ``--runs`` fresh state dirs:

- ``up`` of 1 cloud site, and of 3 cloud sites at once (parallel: should cost about the same);
- a second ``up`` with nothing changed;
- ``status`` of 3 sites;
- the number of ``pulumi`` invocations one site's ``up`` makes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deplat import operations  # noqa: E402
from deplat.engine import driver, passphrase, workspace  # noqa: E402
from deplat.secrets import SecretStore  # noqa: E402
from deplat.spec import load_spec  # noqa: E402
from tests.engine.conftest import FAKE_BIN, SPEC, stand_in_provider, write_spec  # noqa: E402


def timed(fn: Callable[[], object], runs: int, fresh: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(runs):
        fresh()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def show(label: str, ms: list[float]) -> None:
    median = statistics.median(ms)
    print(f"{label:44s} median {median:7.0f} ms   min {min(ms):7.0f}   max {max(ms):7.0f}   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    tmp = Path(tempfile.mkdtemp(prefix="deplat-engine-bench-"))
    log = tmp / "calls.jsonl"
    os.environ["PATH"] = os.pathsep.join(
        [str(FAKE_BIN), str(Path(sys.executable).parent), os.environ["PATH"]]
    )
    os.environ.update(
        FAKE_PULUMI_LOG=str(log),
        FAKE_PULUMI_HOME=str(tmp / "home"),
        DEPLAT_PASSPHRASE="bench-passphrase",
        HCLOUD_TOKEN="bench-token-1234",
    )
    modules = {n: stand_in_provider(n) for n in ("aws", "hcloud", "gcp")}
    driver.provider_module = lambda site: modules[site.provider.value]
    driver.site_program = lambda spec, site, secrets: lambda: None
    counter = {"n": 0}

    def fresh_spec() -> None:
        counter["n"] += 1
        workspace._commands.clear()
        passphrase.forget()
        state["spec"] = load_spec(write_spec(tmp / f"app{counter['n']}", SPEC))

    state: dict[str, object] = {}

    def up(names: list[str]) -> Callable[[], object]:
        return lambda: operations.up_sites(state["spec"], names, SecretStore(state["spec"]))

    show("up, 1 cloud site (fake CLI)", timed(up(["aws-a"]), runs, fresh_spec))
    show("up, 3 cloud sites in parallel (fake CLI)", timed(up(["aws-a", "hc-b", "gcp-c"]), runs, fresh_spec))

    def up_twice() -> None:
        fresh_spec()
        up(["aws-a", "hc-b", "gcp-c"])()

    show("up again, nothing changed, 3 sites", timed(up(["aws-a", "hc-b", "gcp-c"]), runs, up_twice))
    status = timed(
        lambda: operations.status_sites(state["spec"], None, SecretStore(state["spec"])), runs, up_twice
    )
    show("status, 3 sites", status)
    fresh_spec()
    log.unlink(missing_ok=True)
    up(["aws-a"])()
    calls = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    words = [" ".join(a for a in argv if not a.startswith("-"))[:40] for argv in calls]
    print(f"pulumi invocations for one site's first up: {len(calls)}: {', '.join(words)}")


if __name__ == "__main__":
    main()
