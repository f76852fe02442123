"""The traffic switch against real BIND servers started on loopback (RFC 2136 + TSIG)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deplat.dns import switch
from deplat.dns.base import CasConflict, Change, Deadline, Served, backend_for
from deplat.events import Recorder
from deplat.secrets import SecretStore
from deplat.sites import Addresses
from tests.dns.fakes import FAKE_SECRET, closed_port, fake_dns, spec_with
from tests.support.bind import Bind
from tests.support.dns_zone import first_provider

OLD = Addresses(["127.0.0.11"])
NEW = Addresses(["127.0.0.12"], ["::12"])
NAMES = ["guestbook.test", "www.guestbook.test"]
SERVING_OLD = {name: ["127.0.0.11"] for name in NAMES}


def store(spec, *servers: Bind, extra: dict[str, str] | None = None) -> SecretStore:
    env: dict[str, str] = {"FAKE_TSIG_SECRET": FAKE_SECRET}
    for ns in servers:
        env.update(ns.secret_env())
    env.update(extra or {})
    return SecretStore(spec, environ=env)


def serves(ns: Bind, name: str = "www.guestbook.test") -> list[str]:
    return ns.query(name, "A") + ns.query(name, "AAAA")


def outcomes(report: switch.SwitchReport) -> dict[str, tuple[str, str | None]]:
    return {r.name: (r.outcome, r.error_class) for r in report.results}


@pytest.mark.slow
def test_switch_moves_every_name_from_old_to_new(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a")])
    events = Recorder()

    report = switch.switch_all(spec, store(spec, ns), OLD, NEW, emit=events)

    assert outcomes(report) == {"ns-a": ("switched", None)}
    assert report.ok
    for name in NAMES:
        assert serves(ns, name) == ["127.0.0.12", "::12"]
    assert events.kinds() == ["dns.switch"]
    assert events.events[0].data["outcome"] == "switched"
    assert report.results[0].before["www.guestbook.test"].ipv4 == ["127.0.0.11"]


@pytest.mark.slow
def test_switch_writes_records_with_the_spec_ttl(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a")], ttl=120)

    switch.switch_all(spec, store(spec, ns), OLD, NEW)

    answer = switch.read_all(spec, store(spec, ns))[0]
    assert answer.records["www.guestbook.test"].ttl == 120


@pytest.mark.slow
def test_switch_run_again_reports_already_and_writes_nothing(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a")])
    secrets = store(spec, ns)
    switch.switch_all(spec, secrets, OLD, NEW)
    serial_before = ns.query("guestbook.test", "SOA")

    again = switch.switch_all(spec, secrets, OLD, NEW)

    assert outcomes(again) == {"ns-a": ("already", None)}
    assert again.ok
    assert ns.query("guestbook.test", "SOA") == serial_before  # no update reached the zone


def test_switch_writes_nothing_on_cas_conflict(bind_factory):
    ns = bind_factory(records={name: ["127.0.0.99"] for name in NAMES})  # someone else moved it
    spec = spec_with([ns.dns_entry("ns-a")])

    report = switch.switch_all(spec, store(spec, ns), OLD, NEW)

    assert outcomes(report) == {"ns-a": ("conflict", None)}
    assert not report.ok
    assert "127.0.0.99" in report.results[0].message
    assert serves(ns) == ["127.0.0.99"]


@pytest.mark.slow
def test_conflict_on_one_name_writes_no_name_on_that_provider(bind_factory):
    ns = bind_factory(records={"guestbook.test": ["127.0.0.11"], "www.guestbook.test": ["127.0.0.99"]})
    spec = spec_with([ns.dns_entry("ns-a")])

    report = switch.switch_all(spec, store(spec, ns), OLD, NEW)

    assert outcomes(report)["ns-a"][0] == "conflict"
    assert serves(ns, "guestbook.test") == ["127.0.0.11"]


@pytest.mark.slow
def test_switch_from_nothing_writes_only_where_there_are_no_records(bind_factory):
    empty = bind_factory()
    taken = bind_factory(records=SERVING_OLD)
    spec = spec_with([empty.dns_entry("empty"), taken.dns_entry("taken")])

    report = switch.switch_all(spec, store(spec, empty, taken), None, NEW)

    assert outcomes(report) == {"empty": ("switched", None), "taken": ("conflict", None)}
    assert serves(empty) == ["127.0.0.12", "::12"]
    assert serves(taken) == ["127.0.0.11"]


def test_bind_refuses_a_stale_write_by_its_prerequisites(bind_factory):
    """The server-side half of compare-and-swap: a write based on an out-of-date read is refused."""
    ns = bind_factory(records={"www.guestbook.test": ["127.0.0.99"]})
    spec = spec_with([ns.dns_entry("ns-a")])
    backend = backend_for(*first_provider(spec), store(spec, ns))
    stale = Change("www.guestbook.test", Served(["127.0.0.11"]), Served(["127.0.0.12"]))

    with pytest.raises(CasConflict, match="NXRRSET"):
        backend.write([stale], 60, Deadline(2))
    assert serves(ns) == ["127.0.0.99"]


@pytest.mark.slow
def test_wrong_tsig_key_fails_as_auth_and_the_other_provider_still_switches(bind_factory):
    good = bind_factory(records=SERVING_OLD)
    bad = bind_factory(records=SERVING_OLD, secret_name="BAD_TSIG_SECRET")
    spec = spec_with([good.dns_entry("good"), bad.dns_entry("bad")])
    secrets = store(spec, good, extra={"BAD_TSIG_SECRET": FAKE_SECRET})  # not bad's key

    report = switch.switch_all(spec, secrets, OLD, NEW)

    assert outcomes(report) == {"good": ("switched", None), "bad": ("failed", "auth")}
    assert "TSIG" in report.results[1].message
    assert serves(good) == ["127.0.0.12", "::12"]
    assert serves(bad) == ["127.0.0.11"]
    assert report.ok  # one provider serves new, none conflicted


def test_unknown_tsig_key_name_fails_as_auth(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a", key_name="nobody")])

    report = switch.switch_all(spec, store(spec, ns), OLD, NEW)

    assert outcomes(report) == {"ns-a": ("failed", "auth")}
    assert "does not know TSIG key 'nobody'" in report.results[0].message


@pytest.mark.slow
def test_key_without_permission_is_refused_by_bind_as_forbidden(bind_factory):
    locked = bind_factory(records=SERVING_OLD, allow_update=False)
    good = bind_factory(records=SERVING_OLD)
    spec = spec_with([locked.dns_entry("locked"), good.dns_entry("good")])

    report = switch.switch_all(spec, store(spec, locked, good), OLD, NEW)

    assert outcomes(report) == {"locked": ("failed", "forbidden"), "good": ("switched", None)}
    assert "REFUSED" in report.results[0].message
    assert serves(locked) == ["127.0.0.11"]


@pytest.mark.slow
def test_server_down_fails_as_transient_and_others_switch(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    down = {
        "name": "down",
        "provider": "rfc2136",
        "options": {**ns.dns_entry()["options"], "port": closed_port()},
    }
    spec = spec_with([down, ns.dns_entry("up")])

    report = switch.switch_all(spec, store(spec, ns), OLD, NEW)

    assert outcomes(report) == {"down": ("failed", "transient"), "up": ("switched", None)}
    assert "connection refused" in report.results[0].message
    assert serves(ns) == ["127.0.0.12", "::12"]


@pytest.mark.slow
def test_frozen_bind_times_out_without_delaying_the_others(bind_factory):
    frozen = bind_factory(records=SERVING_OLD)
    a = bind_factory(records=SERVING_OLD)
    b = bind_factory(records=SERVING_OLD)
    spec = spec_with([frozen.dns_entry("frozen", timeout=0.4), a.dns_entry("a"), b.dns_entry("b")])
    frozen.freeze()
    try:
        started = time.monotonic()
        report = switch.switch_all(spec, store(spec, frozen, a, b), OLD, NEW, timeout=2.0)
        took = time.monotonic() - started
    finally:
        frozen.thaw()

    assert outcomes(report) == {
        "frozen": ("failed", "transient"),
        "a": ("switched", None),
        "b": ("switched", None),
    }
    assert "no answer within" in report.results[0].message
    assert took < 2.0
    assert max(r.seconds for r in report.results[1:]) < 0.3  # the others did not wait for it
    assert serves(a) == serves(b) == ["127.0.0.12", "::12"]
    assert serves(frozen) == ["127.0.0.11"]


@pytest.mark.slow
def test_the_switch_deadline_bounds_a_provider_that_never_answers(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    with fake_dns(None) as silent:
        spec = spec_with([silent.dns_entry("silent", timeout=30), ns.dns_entry("ns")])
        started = time.monotonic()
        report = switch.switch_all(spec, store(spec, ns), OLD, NEW, timeout=0.5)
        took = time.monotonic() - started

    assert outcomes(report) == {"silent": ("failed", "transient"), "ns": ("switched", None)}
    assert took < 0.5 + switch.GRACE + 0.3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query_rcode", "update_rcode", "error_class", "text"),
    [
        ("SERVFAIL", "same", "transient", "SERVFAIL"),
        ("REFUSED", "same", "forbidden", "REFUSED"),
        ("NOTAUTH", "same", "auth", "NOTAUTH"),
        ("NOERROR", "SERVFAIL", "transient", "SERVFAIL (update"),
        ("NOERROR", "REFUSED", "forbidden", "REFUSED (update"),
        ("NOERROR", "NOTAUTH", "auth", "NOTAUTH (update"),
    ],
)
def test_error_rcodes_are_classified_and_the_real_bind_still_switches(
    bind_factory, query_rcode, update_rcode, error_class, text
):
    ns = bind_factory()  # empty: old=None fits both it and the fake's empty answers
    with fake_dns(query_rcode, update_rcode=update_rcode) as broken:
        spec = spec_with([broken.dns_entry("broken"), ns.dns_entry("ns")])
        report = switch.switch_all(spec, store(spec, ns), None, NEW)

    assert outcomes(report) == {"broken": ("failed", error_class), "ns": ("switched", None)}
    assert text in report.results[0].message
    assert serves(ns) == ["127.0.0.12", "::12"]


def test_a_server_that_is_not_authoritative_is_a_fatal_misconfiguration():
    with fake_dns("NOERROR", authoritative=False) as resolver_like:
        spec = spec_with([resolver_like.dns_entry("resolver")])
        answer = switch.read_all(spec, SecretStore(spec, environ={"FAKE_TSIG_SECRET": FAKE_SECRET}))[0]

    assert (answer.ok, answer.error_class) == (False, "fatal")
    assert "not authoritative" in (answer.error or "")


@pytest.mark.slow
def test_missing_tsig_secret_fails_that_provider_with_a_hint(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a")])

    report = switch.switch_all(spec, SecretStore(spec, environ={}), OLD, NEW)

    assert outcomes(report) == {"ns-a": ("failed", "auth")}
    assert "DNS_TSIG_SECRET" in report.results[0].message
    assert serves(ns) == ["127.0.0.11"]


@pytest.mark.slow
def test_tsig_secret_never_appears_in_results_or_events(bind_factory):
    good = bind_factory(records=SERVING_OLD)
    bad = bind_factory(records=SERVING_OLD, secret_name="BAD_TSIG_SECRET")
    spec = spec_with([good.dns_entry("good"), bad.dns_entry("bad")])
    secrets = store(spec, good, extra={"BAD_TSIG_SECRET": FAKE_SECRET})
    events = Recorder()

    report = switch.switch_all(spec, secrets, OLD, NEW, emit=events)

    text = json.dumps(report.to_dict()) + json.dumps([e.to_dict() for e in events.events])
    assert good.key_secret not in text and FAKE_SECRET not in text
    assert len(events.events) == 2


@pytest.mark.slow
def test_sync_writes_the_desired_records_whatever_is_served(bind_factory):
    ns = bind_factory(records={"www.guestbook.test": ["127.0.0.99", "::99"]})
    spec = spec_with([ns.dns_entry("ns-a")])
    secrets = store(spec, ns)

    report = switch.sync_all(spec, secrets, Addresses(["127.0.0.12"]))
    again = switch.sync_all(spec, secrets, Addresses(["127.0.0.12"]))

    assert outcomes(report) == {"ns-a": ("switched", None)}
    assert outcomes(again) == {"ns-a": ("already", None)}
    assert serves(ns) == ["127.0.0.12"]  # the stray AAAA is gone too
    assert serves(ns, "guestbook.test") == ["127.0.0.12"]


@pytest.mark.slow
def test_ttl_lower_rewrites_the_same_records_with_a_low_ttl(bind_factory):
    ns = bind_factory(records=SERVING_OLD)
    spec = spec_with([ns.dns_entry("ns-a")])
    secrets = store(spec, ns)

    report = switch.ttl_all(spec, secrets, 30)

    assert outcomes(report) == {"ns-a": ("switched", None)}
    answer = switch.read_all(spec, secrets)[0]
    assert {n: (s.ipv4, s.ttl) for n, s in answer.records.items()} == {
        name: (["127.0.0.11"], 30) for name in NAMES
    }
    assert outcomes(switch.ttl_all(spec, secrets, 30)) == {"ns-a": ("already", None)}


@pytest.mark.slow
def test_read_all_reports_each_provider_and_where_they_disagree(bind_factory):
    a = bind_factory(records=SERVING_OLD)
    b = bind_factory(records={"guestbook.test": ["127.0.0.11"], "www.guestbook.test": ["127.0.0.12"]})
    spec = spec_with(
        [
            a.dns_entry("a"),
            b.dns_entry("b"),
            {**a.dns_entry("down"), "options": {**a.dns_entry()["options"], "port": closed_port()}},
        ]
    )

    answers = switch.read_all(spec, store(spec, a, b))

    assert [(x.provider, x.ok) for x in answers] == [("a", True), ("b", True), ("down", False)]
    assert answers[2].error_class == "transient"
    assert switch.disagreements(answers) == {"www.guestbook.test": {"a": "127.0.0.11", "b": "127.0.0.12"}}


def test_bind_fixture_gives_a_ready_server_and_its_spec_entry(bind_server: Bind, tmp_path: Path):
    assert bind_server.query("ns1.guestbook.test") == ["127.0.0.1"]
    entry = bind_server.dns_entry("ns-x")
    assert entry["options"]["port"] == bind_server.port
    assert bind_server.secret_env() == {"DNS_TSIG_SECRET": bind_server.key_secret}
