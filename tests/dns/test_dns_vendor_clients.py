"""Hetzner DNS and Cloud DNS through the vendors' own clients (hcloud-python, google-cloud-dns),
against the loopback fakes of their APIs: asynchronous work is waited for, documented error codes
are classified, the clients' own retries never outlast a deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from deplat.dns import switch
from deplat.dns.base import Change, Deadline, DnsError, Served, backend_for
from deplat.secrets import SecretStore
from tests.dns.fake_apis import FakeCloudDns, FakeHetznerDns
from tests.dns.fakes import spec_with
from tests.dns.test_dns_http_providers import ENV, NEW, OLD, gcp_entry, hetzner_entry, outcomes, seed_old
from tests.support.dns_zone import first_provider


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


def hetzner_backend(api: FakeHetznerDns):
    spec = spec_with([hetzner_entry(api.url)])
    return backend_for(*first_provider(spec), SecretStore(spec, environ=ENV))


# -- Hetzner: actions ------------------------------------------------------------------------


def test_hetzner_write_returns_only_after_each_action_succeeded(hetzner):
    seed_old(hetzner=hetzner)
    hetzner.running_polls = 2  # each action answers "running" twice more before "success"
    backend = hetzner_backend(hetzner)

    backend.write(
        [Change("www.guestbook.test", Served(["192.0.2.11"], ttl=60), Served(["192.0.2.12"]))],
        60,
        Deadline(5),
    )

    assert hetzner.values("www") == ["192.0.2.12"]
    assert hetzner.actions and hetzner.finished()
    assert all(polls == 3 for polls in hetzner.polls.values())
    assert any(agent.startswith("deplat hcloud-python/") for agent in hetzner.user_agents)


def test_hetzner_switch_waits_for_every_action_before_reporting_switched(hetzner):
    seed_old(hetzner=hetzner)
    hetzner.running_polls = 1
    spec = spec_with([hetzner_entry(hetzner.url)])

    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW)

    assert outcomes(report) == {"hetzner": ("switched", None)}
    assert len(hetzner.actions) == 4 and hetzner.finished()  # 2 set_records + 2 create (AAAA)


@pytest.mark.slow
def test_hetzner_action_still_running_at_the_deadline_fails_transient_within_it(hetzner):
    seed_old(hetzner=hetzner)
    hetzner.running_polls = None  # never finishes
    spec = spec_with([hetzner_entry(hetzner.url)])

    started = time.monotonic()
    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW, timeout=1.5)

    assert outcomes(report) == {"hetzner": ("failed", "transient")}
    assert "may still be applied" in report.results[0].message
    assert time.monotonic() - started < 1.5 + switch.GRACE
    assert len(hetzner.actions) == 1  # nothing more was sent while the first action ran


@pytest.mark.parametrize(
    ("code", "message", "error_class"),
    [
        ("resource_locked", "The resource is locked. The caller should contact support", "suspended"),
        ("server_error", "Error within the API backend", "transient"),
        ("invalid_input", "invalid record value", "fatal"),
    ],
)
def test_hetzner_failed_action_is_classified_by_its_error_code(hetzner, code, message, error_class):
    seed_old(hetzner=hetzner)
    hetzner.action_error = (code, message)
    backend = hetzner_backend(hetzner)

    with pytest.raises(DnsError) as failed:
        backend.write(
            [Change("www.guestbook.test", Served(["192.0.2.11"], ttl=60), Served(["192.0.2.12"]))],
            60,
            Deadline(5),
        )

    assert failed.value.error_class == error_class
    assert code in failed.value.message and message in failed.value.message


# -- Hetzner: error answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (401, "unauthorized", "auth"),
        (403, "token_readonly", "forbidden"),
        (423, "resource_locked", "suspended"),
        (423, "locked", "transient"),
        (503, "maintenance", "transient"),
        (429, "rate_limit_exceeded", "transient"),  # hcloud-python would retry this 5 times
        (502, "bad_gateway", "transient"),  # and this
        (409, "conflict", "transient"),  # and this
        (404, "not_found", "fatal"),
    ],
)
def test_hetzner_error_answers_are_classified_by_documented_code_in_one_request(
    hetzner, status, code, error_class
):
    hetzner.fail_with = (status, code, f"answer {code}")
    spec = spec_with([hetzner_entry(hetzner.url)])

    started = time.monotonic()
    answer = switch.read_all(spec, SecretStore(spec, environ=ENV))[0]

    assert (answer.ok, answer.error_class) == (False, error_class)
    assert f"({code}" in (answer.error or "")
    assert len(hetzner.requests) == 1  # the client's own retries are off: the deadline owns the time
    assert time.monotonic() - started < 1.0


# -- Cloud DNS: changes ----------------------------------------------------------------------


def test_clouddns_write_returns_only_after_the_change_is_done(gcp):
    seed_old(gcp)
    gcp.pending_polls = 1
    spec = spec_with([gcp_entry(gcp.url)])
    backend = backend_for(*first_provider(spec), SecretStore(spec, environ=ENV))

    backend.write(
        [Change("www.guestbook.test", Served(["192.0.2.11"], ttl=60), Served(["192.0.2.12"]))],
        60,
        Deadline(5),
    )

    assert gcp.values("www.guestbook.test") == ["192.0.2.12"]
    assert len(gcp.changes) == 1 and gcp.finished()
    assert list(gcp.polls.values()) == [2]
    assert any(" gccl/" in agent for agent in gcp.user_agents)  # google-cloud-dns's client


@pytest.mark.slow
def test_clouddns_change_pending_at_the_deadline_fails_transient_within_it(gcp):
    seed_old(gcp)
    gcp.pending_polls = None
    spec = spec_with([gcp_entry(gcp.url)])

    started = time.monotonic()
    report = switch.switch_all(spec, SecretStore(spec, environ=ENV), OLD, NEW, timeout=1.5)

    assert outcomes(report) == {"gcp": ("failed", "transient")}
    assert "may still be applied" in report.results[0].message
    assert time.monotonic() - started < 1.5 + switch.GRACE
