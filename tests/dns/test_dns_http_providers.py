"""Cloud DNS and Hetzner DNS at their HTTP boundary: fakes of their REST APIs on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deplat.dns import switch
from deplat.dns.base import CasConflict, Change, Deadline, Served, backend_for
from deplat.secrets import SecretStore
from deplat.sites import Addresses
from tests.dns.fake_apis import TOKEN, FakeCloudDns, FakeHetznerDns
from tests.dns.fakes import closed_port, spec_with
from tests.support.dns_zone import first_provider

OLD = Addresses(["192.0.2.11"])
NEW = Addresses(["192.0.2.12"], ["2001:db8::12"])
NAMES = ["guestbook.test", "www.guestbook.test"]
ENV = {"GCP_TOKEN": TOKEN, "HCLOUD_TOKEN": TOKEN}


@pytest.fixture
def gcp() -> Iterator[FakeCloudDns]:
    api = FakeCloudDns().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def hetzner() -> Iterator[FakeHetznerDns]:
    api = FakeHetznerDns().start()
    try:
        yield api
    finally:
        api.stop()


def gcp_entry(url: str, name: str = "gcp", **extra: Any) -> dict[str, Any]:
    options = {
        "project": "guestbook-dns",
        "managed_zone": "guestbook-zone",
        "endpoint": url + "/dns/v1",
        **extra,
    }
    return {"name": name, "provider": "clouddns", "options": options, "credentials": {"secret": "GCP_TOKEN"}}


def hetzner_entry(url: str, name: str = "hetzner", **extra: Any) -> dict[str, Any]:
    options = {"zone": "guestbook.test", "endpoint": url + "/v1", **extra}
    return {"name": name, "provider": "hcloud", "options": options, "credentials": {"secret": "HCLOUD_TOKEN"}}


def seed_old(gcp: FakeCloudDns | None = None, hetzner: FakeHetznerDns | None = None) -> None:
    if gcp is not None:
        for name in NAMES:
            gcp.put(name, "A", ["192.0.2.11"])
    if hetzner is not None:
        for rr in ("@", "www"):
            hetzner.put(rr, "A", ["192.0.2.11"])


def outcomes(report: switch.SwitchReport) -> dict[str, tuple[str, str | None]]:
    return {r.name: (r.outcome, r.error_class) for r in report.results}


# -- Cloud DNS -------------------------------------------------------------------------------


@pytest.mark.slow
def test_clouddns_switch_sends_one_change_deleting_the_exact_old_sets(gcp):
    seed_old(gcp)
    spec = spec_with([gcp_entry(gcp.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert outcomes(report) == {"gcp": ("switched", None)}
    assert gcp.values("www.guestbook.test") == ["192.0.2.12", "2001:db8::12"]
    changes = [body for method, path, body in gcp.requests if path.endswith("/changes")]
    assert len(changes) == 1
    assert {(d["name"], d["type"], int(d["ttl"]), tuple(d["rrdatas"])) for d in changes[0]["deletions"]} == {
        (name + ".", "A", 60, ("192.0.2.11",)) for name in NAMES
    }


def test_clouddns_already_then_conflict(gcp):
    seed_old(gcp)
    spec = spec_with([gcp_entry(gcp.url)])
    secrets = SecretStore(spec, environ=ENV)
    switch.switch_all(spec, secrets, OLD, NEW)
    writes = len(gcp.requests)

    again = switch.switch_all(spec, secrets, OLD, NEW)
    assert outcomes(again) == {"gcp": ("already", None)}
    assert all(method == "GET" for method, _, _ in gcp.requests[writes:])

    other = switch.switch_all(spec, secrets, OLD, Addresses(["192.0.2.13"]))
    assert outcomes(other) == {"gcp": ("conflict", None)}
    assert gcp.values("guestbook.test") == ["192.0.2.12", "2001:db8::12"]


def test_clouddns_refuses_a_stale_change_with_412(gcp):
    gcp.put("www.guestbook.test", "A", ["192.0.2.99"])
    spec = spec_with([gcp_entry(gcp.url)])
    backend = backend_for(*first_provider(spec), SecretStore(spec, environ=ENV))
    stale = Change("www.guestbook.test", Served(["192.0.2.11"], ttl=60), Served(["192.0.2.12"]))

    with pytest.raises(CasConflict, match="412"):
        backend.write([stale], 60, Deadline(2))
    assert gcp.values("www.guestbook.test") == ["192.0.2.99"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "error_class"),
    [("suspended", "suspended"), ("unauthorized", "auth"), ("unavailable", "transient")],
)
def test_clouddns_failures_are_classified_and_hetzner_still_switches(gcp, hetzner, mode, error_class):
    seed_old(gcp, hetzner)
    gcp.mode = mode
    spec = spec_with([gcp_entry(gcp.url), hetzner_entry(hetzner.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert outcomes(report) == {"gcp": ("failed", error_class), "hetzner": ("switched", None)}
    assert "Cloud DNS answered HTTP" in report.results[0].message
    assert hetzner.values("www") == ["192.0.2.12", "2001:db8::12"]


def test_clouddns_unknown_zone_is_fatal(gcp):
    spec = spec_with([gcp_entry(gcp.url, managed_zone="other-zone")])

    answer = switch.read_all(spec, SecretStore(spec, environ=ENV))[0]

    assert (answer.ok, answer.error_class) == (False, "fatal")


def test_clouddns_token_never_appears_in_output(gcp):
    gcp.mode = "unauthorized"
    spec = spec_with([gcp_entry(gcp.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert TOKEN not in json.dumps(report.to_dict())


@pytest.mark.slow
def test_clouddns_service_account_credentials_that_fail_are_auth(tmp_path):
    spec = spec_with(
        [{**gcp_entry("http://127.0.0.1:9"), "credentials": {"file": str(tmp_path / "missing.json")}}]
    )

    answer = switch.read_all(spec, SecretStore(spec, environ={}))[0]

    assert answer.error_class == "auth"
    assert "Google credentials" in (answer.error or "")


# -- Hetzner ---------------------------------------------------------------------------------


def test_hetzner_switch_sets_records_of_existing_and_creates_missing_rrsets(hetzner):
    seed_old(hetzner=hetzner)
    spec = spec_with([hetzner_entry(hetzner.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert outcomes(report) == {"hetzner": ("switched", None)}
    assert hetzner.values("@") == hetzner.values("www") == ["192.0.2.12", "2001:db8::12"]
    writes = [(m, p) for m, p, _ in hetzner.requests if m != "GET"]
    assert ("POST", "/v1/zones/guestbook.test/rrsets/www/A/actions/set_records") in writes
    assert ("POST", "/v1/zones/guestbook.test/rrsets") in writes  # the AAAA sets are new


def test_hetzner_already_conflict_and_ttl(hetzner):
    seed_old(hetzner=hetzner)
    spec = spec_with([hetzner_entry(hetzner.url)])
    secrets = SecretStore(spec, environ=ENV)

    assert outcomes(switch.switch_all(spec, secrets, None, NEW)) == {"hetzner": ("conflict", None)}
    assert outcomes(switch.switch_all(spec, secrets, OLD, NEW)) == {"hetzner": ("switched", None)}
    assert outcomes(switch.switch_all(spec, secrets, OLD, NEW)) == {"hetzner": ("already", None)}
    assert outcomes(switch.ttl_all(spec, secrets, 30)) == {"hetzner": ("switched", None)}
    assert {s["ttl"] for s in hetzner.rrsets.values()} == {30}


def test_hetzner_zone_by_id_and_sync_removes_stray_records(hetzner):
    hetzner.put("www", "AAAA", ["2001:db8::99"])
    spec = spec_with([hetzner_entry(hetzner.url, zone="4711")])

    report = switch.sync_all(spec, SecretStore(spec, environ=ENV), Addresses(["192.0.2.12"]))

    assert outcomes(report) == {"hetzner": ("switched", None)}
    assert hetzner.values("www") == hetzner.values("@") == ["192.0.2.12"]


def test_hetzner_create_racing_another_writer_is_a_conflict(hetzner):
    hetzner.put("www", "A", ["192.0.2.99"])  # appeared after our read said "nothing there"
    spec = spec_with([hetzner_entry(hetzner.url)])
    backend = backend_for(*first_provider(spec), SecretStore(spec, environ=ENV))

    with pytest.raises(CasConflict, match="409"):
        backend.write([Change("www.guestbook.test", Served(), Served(["192.0.2.12"]))], 60, Deadline(2))
    assert hetzner.values("www") == ["192.0.2.99"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "error_class"),
    [("suspended", "suspended"), ("unauthorized", "auth"), ("unavailable", "transient")],
)
def test_hetzner_failures_are_classified_and_clouddns_still_switches(gcp, hetzner, mode, error_class):
    seed_old(gcp, hetzner)
    hetzner.mode = mode
    spec = spec_with([hetzner_entry(hetzner.url), gcp_entry(gcp.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert outcomes(report) == {"hetzner": ("failed", error_class), "gcp": ("switched", None)}
    assert gcp.values("www.guestbook.test") == ["192.0.2.12", "2001:db8::12"]


@pytest.mark.slow
def test_api_that_never_answers_times_out_as_transient_without_delaying_others(gcp, hetzner):
    seed_old(gcp, hetzner)
    hetzner.mode = "blackhole"
    spec = spec_with([hetzner_entry(hetzner.url, timeout=0.3), gcp_entry(gcp.url)])

    started = time.monotonic()
    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW, timeout=2)

    assert outcomes(report) == {"hetzner": ("failed", "transient"), "gcp": ("switched", None)}
    assert time.monotonic() - started < 1.5
    assert report.results[1].seconds < 0.3


def test_hetzner_down_and_missing_token():
    spec = spec_with([hetzner_entry(f"http://127.0.0.1:{closed_port()}")])

    down = switch.read_all(spec, SecretStore(spec, environ=ENV))[0]
    no_token = switch.read_all(spec, SecretStore(spec, environ={}))[0]

    assert (down.error_class, no_token.error_class) == ("transient", "auth")
    assert "HCLOUD_TOKEN" in (no_token.error or "")
