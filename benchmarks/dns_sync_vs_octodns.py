"""Benchmark: `deplat dns sync` against `octodns-sync --doit`, end to end, on the same BIND change.

    pip install -e '.[bench]'        # octodns and octodns-bind
    python benchmarks/dns_sync_vs_octodns.py [--runs 15]

One real BIND on loopback (TSIG, zone transfers allowed to the key, as octodns-bind reads the zone
by AXFR). Each run first puts the app's two names back on an old address (a direct RFC 2136 update,
not timed), then times one tool as a fresh process until it exits: deplat writes the primary
site's address with compare-and-swap; octoDNS reads the zone, plans and applies the same two A
records from its YAML config. Both are checked to have changed what BIND serves. The tools take
turns, so load on the machine hits both alike. Target (issue 13): deplat no slower than octoDNS.

Both run from compiled bytecode, as installed tools do: the tools get a fresh PYTHONPYCACHEPREFIX
(PYTHONDONTWRITEBYTECODE removed) and one untimed run each first. deplat runs in a project it has
worked in (``.deplat/`` exists, as after ``deplat up``), so from the second run on it reads what
the first kept in ``.deplat/cache/`` and runs without Typer or the spec model (``deplat.cli.quick``);
"deplat dns sync (spec changed)" times a run right after the spec file changed (a new comment each
time), which goes through the Typer command and validates the spec again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.query
import dns.tsigkeyring
import dns.update
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import bind as bind_support  # noqa: E402

NAMES = ["guestbook.test", "www.guestbook.test"]
NEW, OLD = "127.0.0.11", "127.0.0.99"


def _with_transfers(*args: Any) -> str:
    allowed = f'allow-transfer {{ key "{args[4]}"; }};'  # args[4]: the key's name
    return original_conf(*args).replace("allow-transfer { none; };", allowed)


original_conf = bind_support._named_conf
bind_support._named_conf = _with_transfers


def put_back(ns: bind_support.Bind) -> None:
    keyring = dns.tsigkeyring.from_text({ns.key_name: ns.key_secret})
    update = dns.update.UpdateMessage(
        ns.zone, keyring=keyring, keyname=ns.key_name, keyalgorithm="hmac-sha256"
    )
    for name in NAMES:
        update.replace(name + ".", 60, "A", OLD)
    dns.query.tcp(update, ns.host, port=ns.port, timeout=5)


def deplat_spec(folder: Path, ns: bind_support.Bind) -> Path:
    data = yaml.safe_load((ROOT / "examples/guestbook/deplat.yaml").read_text())
    data["dns"] = [ns.dns_entry("ns-self")]
    data["domain"]["ttl"] = 60
    path = folder / "deplat.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def octodns_config(folder: Path, ns: bind_support.Bind) -> Path:
    zones = folder / "zones"
    zones.mkdir()
    records = {
        "": {"type": "A", "ttl": 60, "value": NEW},
        "www": {"type": "A", "ttl": 60, "value": NEW},
        "ns1": {"type": "A", "ttl": 3600, "value": "127.0.0.1"},  # the zone's own NS host, kept
    }
    (zones / f"{ns.zone}.yaml").write_text(yaml.safe_dump(records))
    config = {
        "providers": {
            "config": {"class": "octodns.provider.yaml.YamlProvider", "directory": str(zones)},
            "bind": {
                "class": "octodns_bind.Rfc2136Provider",
                "host": ns.host,
                "port": ns.port,
                "key_name": ns.key_name,
                "key_secret": f"env/{ns.secret_name}",
                "key_algorithm": "hmac-sha256",
            },
        },
        "zones": {f"{ns.zone}.": {"sources": ["config"], "targets": ["bind"]}},
    }
    path = folder / "octodns.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    deplat = shutil.which("deplat") or sys.exit("deplat is not installed: pip install -e '.[bench]'")
    octodns = shutil.which("octodns-sync") or sys.exit("octoDNS is not installed: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with bind_support.start_bind(folder / "bind", records={n: [OLD] for n in NAMES}) as ns:
            env = {**os.environ, **ns.secret_env(), "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            spec = deplat_spec(folder, ns)
            (folder / ".deplat").mkdir(mode=0o700)
            config = octodns_config(folder, ns)
            sync = [deplat, "-f", str(spec), "dns", "sync"]
            tools = {
                "deplat dns sync": sync,
                "deplat dns sync (spec changed)": sync,
                "octodns-sync --doit": [octodns, "--config-file", str(config), "--doit"],
            }
            for cmd in tools.values():  # compile and cache bytecode, untimed
                put_back(ns)
                timed(cmd, env, folder)
            samples: dict[str, list[float]] = {name: [] for name in tools}
            for run in range(args.runs):
                for name, cmd in tools.items():
                    if name.endswith("(spec changed)"):
                        spec.write_text(spec.read_text() + f"# run {run}\n")
                    put_back(ns)
                    samples[name].append(timed(cmd, env, folder))
                    served = [ns.query(n) for n in NAMES]
                    assert served == [[NEW], [NEW]], f"{name} left {served}"
    medians = {name: statistics.median(s) for name, s in samples.items()}
    for name, times in samples.items():
        print(f"{name:31s} median {medians[name] * 1000:6.0f} ms   best {min(times) * 1000:6.0f} ms")
    ratio = medians["deplat dns sync"] / medians["octodns-sync --doit"]
    print(f"deplat / octoDNS (medians): {ratio:.2f}  target <= 1.00  {'ok' if ratio <= 1 else 'OVER TARGET'}")
    changed = medians["deplat dns sync (spec changed)"] / medians["octodns-sync --doit"]
    print(f"deplat, spec just changed / octoDNS (medians): {changed:.2f}")


if __name__ == "__main__":
    main()
