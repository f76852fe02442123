"""Route 53 at its HTTP boundary: moto's server on loopback, spoken to by boto3 through our backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deplat.dns import switch
from deplat.dns.base import CasConflict, Change, Deadline, Served, backend_for
from deplat.secrets import SecretStore
from deplat.sites import Addresses
from tests.dns.fakes import closed_port, spec_with
from tests.support.dns_zone import first_provider

pytestmark = pytest.mark.slow

OLD = Addresses(["192.0.2.11"])
NEW = Addresses(["192.0.2.12"], ["2001:db8::12"])
KEYS = {"AWS_KEYS": "AKIDEXAMPLE:c2VjcmV0LWtleS1mb3ItbW90bw"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def r53(moto_url: str) -> Iterator[Any]:
    import boto3
    import httpx

    httpx.post(f"{moto_url}/moto-api/reset")
    client = boto3.client(
        "route53",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="x",
    )
    yield client


def make_zone(client: Any, records: dict[str, list[str]]) -> str:
    zone_id = client.create_hosted_zone(Name="guestbook.test", CallerReference="t")["HostedZone"]["Id"]
    changes = []
    for name, values in records.items():
        for rdtype in ("A", "AAAA"):
            mine = [v for v in values if (":" in v) == (rdtype == "AAAA")]
            if mine:
                changes.append(
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": name + ".",
                            "Type": rdtype,
                            "TTL": 60,
                            "ResourceRecords": [{"Value": v} for v in mine],
                        },
                    }
                )
    if changes:
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id.rsplit("/", 1)[-1]


def served(client: Any, zone_id: str, name: str) -> list[str]:
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted(
        r["Value"]
        for s in sets
        if s["Name"] == name + "." and s["Type"] in ("A", "AAAA")
        for r in s["ResourceRecords"]
    )


def entry(moto_url: str, zone_id: str, name: str = "r53", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "route53",
        "options": {"hosted_zone_id": zone_id, "endpoint_url": moto_url, "timeout": 2, **extra},
        "credentials": {"secret": "AWS_KEYS"},
    }


@pytest.mark.slow
def test_route53_switches_with_a_delete_of_the_exact_old_record_and_a_create(r53, moto_url):
    zone = make_zone(r53, {"guestbook.test": ["192.0.2.11"], "www.guestbook.test": ["192.0.2.11"]})
    spec = spec_with([entry(moto_url, zone)])
    secrets = SecretStore(spec, environ=KEYS)
    sent: list[dict[str, Any]] = []
    backend = backend_for(*first_provider(spec), secrets)
    event = "provide-client-params.route53.ChangeResourceRecordSets"
    events = backend.client().meta.events
    events.register(event, lambda params, **_: sent.append(params), unique_id="t")
    try:
        current = backend.read(["www.guestbook.test"], Deadline(2))
        backend.write(
            [Change("www.guestbook.test", current["www.guestbook.test"], Served.of(NEW))], 60, Deadline(2)
        )
    finally:
        events.unregister(event, unique_id="t")

    actions = [(c["Action"], c["ResourceRecordSet"]["Type"]) for c in sent[0]["ChangeBatch"]["Changes"]]
    assert actions == [("DELETE", "A"), ("CREATE", "A"), ("CREATE", "AAAA")]
    assert sent[0]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["ResourceRecords"] == [
        {"Value": "192.0.2.11"}
    ]
    assert served(r53, zone, "www.guestbook.test") == ["192.0.2.12", "2001:db8::12"]


@pytest.mark.slow
def test_route53_switch_then_already_then_conflict(r53, moto_url):
    zone = make_zone(r53, {"guestbook.test": ["192.0.2.11"], "www.guestbook.test": ["192.0.2.11"]})
    spec = spec_with([entry(moto_url, zone)])
    secrets = SecretStore(spec, environ=KEYS)

    first = switch.switch_all(spec, secrets, OLD, NEW)
    again = switch.switch_all(spec, secrets, OLD, NEW)
    other = switch.switch_all(spec, secrets, OLD, Addresses(["192.0.2.13"]))

    assert [r.outcome for r in (first.results[0], again.results[0], other.results[0])] == [
        "switched",
        "already",
        "conflict",
    ]
    assert served(r53, zone, "guestbook.test") == ["192.0.2.12", "2001:db8::12"]
    answer = switch.read_all(spec, secrets)[0]
    assert answer.records["www.guestbook.test"].to_dict() == {
        "ipv4": ["192.0.2.12"],
        "ipv6": ["2001:db8::12"],
        "ttl": 60,
    }


def test_route53_rejects_a_stale_delete_and_writes_nothing(r53, moto_url):
    zone = make_zone(r53, {})
    r53.change_resource_record_sets(  # someone else's record, never what we think is there
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "www.guestbook.test.",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.99"}],
                    },
                }
            ]
        },
    )
    spec = spec_with([entry(moto_url, zone)])
    backend = backend_for(*first_provider(spec), SecretStore(spec, environ=KEYS))
    stale = Change("www.guestbook.test", Served(["192.0.2.11"], ttl=60), Served(["192.0.2.12"]))

    with pytest.raises(CasConflict):
        backend.write([stale], 60, Deadline(2))
    assert served(r53, zone, "www.guestbook.test") == ["192.0.2.99"]


def test_route53_unknown_zone_is_fatal(r53, moto_url):
    spec = spec_with([entry(moto_url, "ZNOSUCHZONE00")])

    answer = switch.read_all(spec, SecretStore(spec, environ=KEYS))[0]

    assert (answer.ok, answer.error_class) == (False, "fatal")
    assert "ZNOSUCHZONE00" in (answer.error or "")


def test_route53_unreachable_is_transient():
    spec = spec_with([entry(f"http://127.0.0.1:{closed_port()}", "Z123")])

    report = switch.switch_all(spec, SecretStore(spec, environ=KEYS), OLD, NEW)

    assert (report.results[0].outcome, report.results[0].error_class) == ("failed", "transient")


def test_route53_keys_secret_must_hold_id_and_key(moto_url):
    spec = spec_with([entry(moto_url, "Z123")])

    answer = switch.read_all(spec, SecretStore(spec, environ={"AWS_KEYS": "no-colon-here"}))[0]

    assert answer.error_class == "auth"
    assert "no-colon-here" not in (answer.error or "")


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("InvalidClientTokenId", "The security token included in the request is invalid", 403, "auth"),
        (
            "AccessDenied",
            "User is not authorized to perform route53:ChangeResourceRecordSets",
            403,
            "forbidden",
        ),
        ("AccessDenied", "Your account is suspended", 403, "suspended"),
        ("Throttling", "Rate exceeded", 400, "transient"),
        ("PriorRequestNotComplete", "The request was rejected", 400, "transient"),
        ("ValidationError", "bad", 400, "fatal"),
    ],
)
def test_route53_errors_are_classified(code, message, status, expected):
    from deplat.dns.route53 import classify_client_error

    assert classify_client_error(code, message, status) == expected


def test_a_route53_only_spec_is_verified_through_the_route53_api(r53, moto_url):
    from deplat.failover.traffic import DnsTraffic

    zone = make_zone(r53, {"guestbook.test": ["192.0.2.11"], "www.guestbook.test": ["192.0.2.11"]})
    spec = spec_with([entry(moto_url, zone)])
    traffic = DnsTraffic(spec, SecretStore(spec, environ=KEYS), timeout=2)

    before = traffic.verify("local-b", NEW)
    switched = traffic.switch("local-a", OLD, "local-b", NEW)
    after = traffic.verify("local-b", NEW)

    assert not before.serving and before.left_behind == ["r53"]
    assert switched.outcome == "switched" and switched.providers == {"r53": "switched"}
    assert after.serving and after.left_behind == []
