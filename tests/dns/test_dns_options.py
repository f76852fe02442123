"""Each DNS provider kind checks its own options (the ``validate_options`` hook ``deplat validate`` calls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deplat.dns import option_problems
from deplat.dns.base import Served, fqdn
from deplat.errors import SpecError
from deplat.spec import load_spec
from tests.dns.fakes import spec_with

ROOT = Path(__file__).resolve().parents[2]


def problems(entry: dict) -> list[tuple[tuple, str]]:
    spec = spec_with([entry])
    return option_problems(spec.dns[0], spec)


def test_the_cloud_example_and_starter_dns_entries_are_accepted():
    spec = load_spec(ROOT / "examples" / "cloud" / "deplat.yaml")
    assert [option_problems(d, spec) for d in spec.dns] == [[], []]


@pytest.mark.parametrize(
    ("entry", "path", "fragment"),
    [
        (
            {"provider": "rfc2136", "options": {"port": 53, "key_name": "k", "key_secret": "S"}},
            ("options",),
            "server",
        ),
        (
            {
                "provider": "rfc2136",
                "options": {"server": "ns1.example.net", "key_name": "k", "key_secret": "c2VjcmV0=="},
            },
            ("options", "key_secret"),
            "NAME of the secret",
        ),
        (
            {
                "provider": "rfc2136",
                "options": {"server": "127.0.0.1", "port": 99999, "key_name": "k", "key_secret": "S"},
            },
            ("options", "port"),
            "1 to 65535",
        ),
        (
            {
                "provider": "rfc2136",
                "options": {"server": "ns1", "key_name": "k", "key_secret": "S", "key_algorithm": "rot13"},
            },
            ("options", "key_algorithm"),
            "hmac-sha256",
        ),
        (
            {
                "provider": "rfc2136",
                "options": {"server": "ns1", "key_name": "k", "key_secret": "S", "zone_name": "x"},
            },
            ("options", "zone_name"),
            "unknown option",
        ),
        ({"provider": "route53", "options": {}}, ("options",), "hosted_zone_id"),
        (
            {"provider": "route53", "options": {"hosted_zone_id": "not a zone"}},
            ("options", "hosted_zone_id"),
            "not a",
        ),
        (
            {"provider": "route53", "options": {"hosted_zone_id": "Z1", "endpoint_url": "localhost:5000"}},
            ("options", "endpoint_url"),
            "URL",
        ),
        ({"provider": "clouddns", "options": {"project": "my-project"}}, ("options",), "managed_zone"),
        ({"provider": "hcloud", "options": {"zone": "other.example"}}, ("options", "zone"), "domain.zone"),
        ({"provider": "hcloud", "options": {"timeout": 0}}, ("options", "timeout"), "more than 0"),
    ],
)
def test_bad_options_are_located_with_a_clear_message(entry, path, fragment):
    found = problems({"name": "dns-x", **entry})
    assert any(p == path and fragment in m for p, m in found), found


@pytest.mark.parametrize(
    "entry",
    [
        {
            "provider": "rfc2136",
            "options": {"server": "2001:db8::53", "key_name": "deplat", "key_secret": "TSIG"},
        },
        {"provider": "route53", "options": {"hosted_zone_id": "/hostedzone/Z0123", "region": "eu-central-1"}},
        {"provider": "clouddns", "options": {"project": "guestbook-dns", "managed_zone": "guestbook-zone"}},
        {"provider": "hcloud", "options": {"zone": "guestbook.test", "endpoint": "http://127.0.0.1:1/v1"}},
        {"provider": "hcloud", "options": {"zone": 4711}},
    ],
)
def test_good_options_pass(entry):
    assert problems({"name": "dns-x", **entry}) == []


def test_deplat_validate_reports_dns_option_problems_with_file_and_line(tmp_path):
    entry = {
        "name": "ns",
        "provider": "rfc2136",
        "options": {"server": "ns1", "key_name": "k", "key_secret": "abc"},
    }
    with pytest.raises(SpecError) as info:
        spec_with([entry], tmp_path)
    assert any("dns[0].options.key_secret" in str(p) or "key_secret" in str(p) for p in info.value.problems)


def test_names_and_addresses_are_compared_in_canonical_form():
    assert fqdn("WWW.Guestbook.Test.", "guestbook.test") == "www.guestbook.test"
    assert fqdn("www", "guestbook.test") == "www.guestbook.test"
    assert fqdn("@", "guestbook.test") == "guestbook.test"
    assert Served(["10.0.0.2", "10.0.0.1"], ["2001:DB8::0001"]).same_addresses(
        Served(["10.0.0.1", "10.0.0.2"], ["2001:db8::1"])
    )
