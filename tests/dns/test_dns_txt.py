"""TXT records (ACME DNS-01 challenges) on every DNS provider kind: set, replace, delete."""

from __future__ import annotations

from typing import Any

import pytest

from deplat.dns.base import Deadline, backend_for
from deplat.secrets import SecretStore
from tests.dns.fakes import spec_with
from tests.dns.test_dns_http_providers import ENV, gcp, gcp_entry, hetzner, hetzner_entry  # noqa: F401
from tests.dns.test_dns_route53 import KEYS, entry, make_zone, moto_url, r53  # noqa: F401
from tests.support.dns_zone import first_provider

CHALLENGE = "_acme-challenge.www.guestbook.test"


def backend(dns_entry: dict[str, Any], env: dict[str, str]) -> Any:
    spec = spec_with([dns_entry])
    return backend_for(*first_provider(spec), SecretStore(spec, environ=env))


def test_rfc2136_sets_replaces_and_deletes_a_txt_record(bind_server):
    dns = backend(bind_server.dns_entry("ns-a"), bind_server.secret_env())

    dns.set_txt(CHALLENGE, ["first"], 60, Deadline(5))
    assert bind_server.query(CHALLENGE, "TXT") == ['"first"']
    dns.set_txt(CHALLENGE, ["second", "third"], 60, Deadline(5))
    assert bind_server.query(CHALLENGE, "TXT") == ['"second"', '"third"']
    dns.delete_txt(CHALLENGE, Deadline(5))
    dns.delete_txt(CHALLENGE, Deadline(5))  # nothing there: fine
    assert bind_server.query(CHALLENGE, "TXT") == []


def test_clouddns_sets_replaces_and_deletes_a_txt_record(gcp):  # noqa: F811
    dns = backend(gcp_entry(gcp.url), ENV)

    dns.set_txt(CHALLENGE, ["first"], 60, Deadline(5))
    assert gcp.values(CHALLENGE) == ['"first"']
    dns.set_txt(CHALLENGE, ["second"], 60, Deadline(5))  # deletes the served set exactly, adds the new
    assert gcp.values(CHALLENGE) == ['"second"']
    dns.delete_txt(CHALLENGE, Deadline(5))
    dns.delete_txt(CHALLENGE, Deadline(5))
    assert gcp.values(CHALLENGE) == []


def test_hetzner_sets_replaces_and_deletes_a_quoted_txt_record(hetzner):  # noqa: F811
    dns = backend(hetzner_entry(hetzner.url), ENV)

    dns.set_txt(CHALLENGE, ["first"], 60, Deadline(5))
    assert hetzner.values("_acme-challenge.www") == ['"first"']
    dns.set_txt(CHALLENGE, ["second"], 60, Deadline(5))  # 409 on create: set_records instead
    assert hetzner.values("_acme-challenge.www") == ['"second"']
    dns.delete_txt(CHALLENGE, Deadline(5))
    dns.delete_txt(CHALLENGE, Deadline(5))
    assert hetzner.values("_acme-challenge.www") == []


@pytest.mark.slow
def test_route53_upserts_and_deletes_the_exact_txt_record(r53, moto_url):  # noqa: F811
    zone_id = make_zone(r53, {})
    dns = backend(entry(moto_url, zone_id), KEYS)

    def served() -> list[str]:
        sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return [r["Value"] for s in sets if s["Type"] == "TXT" for r in s["ResourceRecords"]]

    dns.set_txt(CHALLENGE, ["first"], 60, Deadline(5))
    assert served() == ['"first"']
    dns.set_txt(CHALLENGE, ["second"], 60, Deadline(5))
    assert served() == ['"second"']
    dns.delete_txt(CHALLENGE, Deadline(5))
    dns.delete_txt(CHALLENGE, Deadline(5))
    assert served() == []
