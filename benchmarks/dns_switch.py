"""Benchmark: how fast the traffic switch moves a name, on one and on several DNS providers.

    python benchmarks/dns_switch.py [--runs 40]

1. One real BIND on loopback: time from the ``switch_all`` call until BIND answers the new
   address to a dnspython query (polled every 0.5 ms). Target (issue 5): under 50 ms.
2. Three BINDs switched at once vs each alone: "at once" should be no slower than the slowest alone.
3. Three different kinds at once (BIND over RFC 2136, Route 53 on a moto server, a Cloud DNS fake on
   loopback) vs each alone.
4. Three API providers 20 ms away (fakes that wait before answering) at once vs each alone.
On loopback a provider's switch is ~3-10 ms of Python CPU (dnspython, botocore), so 2. and 3. run
close to the sum under the GIL; 4. is the real case, where the time is spent waiting.
Reports median, p95 and worst of ``--runs`` switches back and forth between two addresses.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deplat.dns import switch  # noqa: E402
from deplat.secrets import SecretStore  # noqa: E402
from deplat.sites import Addresses  # noqa: E402
from tests.dns.fake_apis import TOKEN, FakeCloudDns  # noqa: E402
from tests.dns.fakes import spec_with  # noqa: E402
from tests.support.bind import Bind, start_bind  # noqa: E402

A = Addresses(["127.0.0.11"])
NAMES = ["guestbook.test", "www.guestbook.test"]
FRESH = itertools.count()


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms   "
        f"worst {ordered[-1] * 1000:6.1f} ms"
    )


def back_and_forth(
    spec: Any, secrets: SecretStore, runs: int, until: Callable[[Addresses], None]
) -> list[float]:
    samples = []
    old = A
    for _ in range(runs):
        i = next(FRESH)
        # a fresh address each time: moto refuses to re-CREATE a record set identical to an earlier
        # CREATE while it exists, even when the same batch DELETEs it first (real Route 53 accepts it)
        new = Addresses([f"127.0.{1 + i // 200}.{1 + i % 200}"])
        started = time.perf_counter()
        report = switch.switch_all(spec, secrets, old, new)
        if not report.ok or any(r.outcome != "switched" for r in report.results):
            raise SystemExit(f"switch failed: {report.to_dict()}")
        until(new)
        samples.append(time.perf_counter() - started)
        old = new
    spec_reset = switch.sync_all(spec, secrets, A)  # leave every provider on A for the next round
    if not spec_reset.ok:
        raise SystemExit(f"sync failed: {spec_reset.to_dict()}")
    return samples


def served_by(ns: Bind, want: Addresses, limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ns.query("www.guestbook.test", "A", timeout=0.5) == want.ipv4:
            return
        time.sleep(0.0005)
    raise SystemExit("BIND never served the new answer")


def bind_alone(tmp: Path, runs: int) -> None:
    ns = start_bind(tmp / "one", records={n: A.ipv4 for n in NAMES})
    try:
        spec = spec_with([ns.dns_entry("ns")])
        secrets = SecretStore(spec, environ=ns.secret_env())
        samples = back_and_forth(spec, secrets, runs, lambda want: served_by(ns, want))
        print(f"1. switch call -> BIND serves the new answer:      {figures(samples)}")
    finally:
        ns.stop()


def three_binds(tmp: Path, runs: int) -> None:
    servers = [
        start_bind(tmp / f"b{i}", records={n: A.ipv4 for n in NAMES}, secret_name=f"TSIG_{i}")
        for i in range(3)
    ]
    try:
        env = {k: v for ns in servers for k, v in ns.secret_env().items()}
        alone = []
        for i, ns in enumerate(servers):
            spec = spec_with([ns.dns_entry(f"ns{i}")])
            alone.append(back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None))
        spec = spec_with([ns.dns_entry(f"ns{i}") for i, ns in enumerate(servers)])
        together = back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None)
        for i, samples in enumerate(alone):
            print(f"2. BIND ns{i} alone:                               {figures(samples)}")
        print(f"2. three BINDs at once:                           {figures(together)}")
    finally:
        for ns in servers:
            ns.stop()


def mixed_kinds(tmp: Path, runs: int) -> None:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    ns = start_bind(tmp / "mixed", records={n: A.ipv4 for n in NAMES})
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    gcp = FakeCloudDns().start()
    try:
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        r53 = boto3.client(
            "route53",
            region_name="us-east-1",
            endpoint_url=moto_url,
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        zone = r53.create_hosted_zone(Name="guestbook.test", CallerReference="bench")["HostedZone"]["Id"]
        r53.change_resource_record_sets(
            HostedZoneId=zone,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": n + ".",
                            "Type": "A",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": A.ipv4[0]}],
                        },
                    }
                    for n in NAMES
                ]
            },
        )
        for n in NAMES:
            gcp.put(n, "A", A.ipv4)
        entries = {
            "rfc2136": ns.dns_entry("bind"),
            "route53": {
                "name": "route53",
                "provider": "route53",
                "options": {"hosted_zone_id": zone.rsplit("/", 1)[-1], "endpoint_url": moto_url},
                "credentials": {"secret": "AWS_KEYS"},
            },
            "clouddns": {
                "name": "clouddns",
                "provider": "clouddns",
                "options": {
                    "project": "guestbook-dns",
                    "managed_zone": "guestbook-zone",
                    "endpoint": gcp.url + "/dns/v1",
                },
                "credentials": {"secret": "GCP_TOKEN"},
            },
        }
        env = {**ns.secret_env(), "AWS_KEYS": "AKID:secretkey", "GCP_TOKEN": TOKEN}
        for kind, entry in entries.items():
            spec = spec_with([entry])
            print(
                f"3. {kind:8} alone:                               "
                f"{figures(back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None))}"
            )
        spec = spec_with(list(entries.values()))
        together = back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None)
        print(f"3. rfc2136 + route53 + clouddns at once:          {figures(together)}")
    finally:
        gcp.stop()
        moto.stop()
        ns.stop()


def far_apis(runs: int, delay: float) -> None:
    """Three API providers each ``delay`` s away (a fake adds it before every answer): the real case,
    where a provider's time is spent waiting on the network, not in Python."""
    from tests.dns.fake_apis import FakeHetznerDns

    apis = [FakeCloudDns().start(), FakeCloudDns().start(), FakeHetznerDns().start()]
    try:
        entries = []
        for i, api in enumerate(apis):
            api.delay = delay
            if isinstance(api, FakeHetznerDns):
                for rr in ("@", "www"):
                    api.put(rr, "A", A.ipv4)
                entries.append(
                    {
                        "name": f"api{i}",
                        "provider": "hcloud",
                        "options": {"endpoint": api.url + "/v1"},
                        "credentials": {"secret": "TOKEN"},
                    }
                )
            else:
                for n in NAMES:
                    api.put(n, "A", A.ipv4)
                entries.append(
                    {
                        "name": f"api{i}",
                        "provider": "clouddns",
                        "options": {
                            "project": "guestbook-dns",
                            "managed_zone": "guestbook-zone",
                            "endpoint": api.url + "/dns/v1",
                        },
                        "credentials": {"secret": "TOKEN"},
                    }
                )
        env = {"TOKEN": TOKEN}
        for entry in entries:
            spec = spec_with([entry])
            samples = back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None)
            print(f"4. {entry['provider']:8} {delay * 1000:.0f} ms away, alone:           {figures(samples)}")
        spec = spec_with(entries)
        together = back_and_forth(spec, SecretStore(spec, environ=env), runs, lambda _w: None)
        print(f"4. all three at once:                             {figures(together)}")
    finally:
        for api in apis:
            api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deplat-dns-bench-") as tmp:
        bind_alone(Path(tmp), args.runs)
        three_binds(Path(tmp), args.runs)
        mixed_kinds(Path(tmp), args.runs)
        far_apis(max(5, args.runs // 4), 0.02)


if __name__ == "__main__":
    main()
