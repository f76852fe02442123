"""The DNS provider registry: a new DNS provider kind is one module, and nothing else changes.

The throwaway kind below is seen by a fresh interpreter only (``tests.support.extra_module``); no
file of deplat is touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deplat import dns
from deplat.dns.base import DnsBackend
from deplat.spec.model import DnsProviderKind
from tests.support.extra_module import APP, seen_with_module

THROWAWAY = '''
"""A throwaway DNS provider kind."""
from typing import Any

from deplat.dns.base import Change, Deadline, DnsBackend, Served, check_known

OPTIONS = ("endpoint",)


def validate_options(provider: Any, spec: Any) -> list[tuple[tuple[Any, ...], str]]:
    return check_known(provider.options, OPTIONS, "throwaway")


class Backend(DnsBackend):
    kind = "throwaway"

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        return {name: Served() for name in names}

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        return None
'''

SPEC = (
    APP
    + """sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1}
  - {name: hel-b, provider: hcloud, role: warm, region: hel1}
dns:
  - {name: ns, provider: throwaway, options: {endpoint: "https://dns.example.net"}}
"""
)

RUNNER = """
import json
import sys

import deplat.dns
from deplat.errors import SpecError
from deplat.spec.loader import load_spec
from deplat.spec.model import DnsProviderKind
from deplat.spec.schema import json_schema


def problems(path):
    try:
        load_spec(path)
    except SpecError as exc:
        return [p.message for p in exc.problems]
    return []


spec = load_spec(sys.argv[2])
schema = json_schema()["$defs"]
rules = {r["if"]["properties"]["provider"]["const"]: r["then"] for r in schema["DnsProvider"]["allOf"]}
print(json.dumps({
    "kinds": list(deplat.dns.kinds()),
    "enum": [k.value for k in DnsProviderKind],
    "schema_enum": schema["DnsProviderKind"]["enum"],
    "options_schema": sorted(rules["throwaway"]["properties"]["options"]["properties"]),
    "loaded": spec.dns[0].provider.value,
    "bad_option": problems(sys.argv[3]),
    "bad_kind": problems(sys.argv[4]),
}))
"""


@pytest.mark.slow
def test_a_new_dns_provider_is_one_module_that_validates_and_appears_in_the_schema(tmp_path: Path) -> None:
    spec = tmp_path / "deplat.yaml"
    spec.write_text(SPEC)
    bad_option = tmp_path / "bad_option.yaml"
    bad_option.write_text(SPEC.replace("endpoint:", "endpiont:"))
    bad_kind = tmp_path / "bad_kind.yaml"
    bad_kind.write_text(SPEC.replace("provider: throwaway", "provider: bind9"))
    extra = tmp_path / "more_dns"
    seen = seen_with_module(extra, "deplat.dns", "throwaway", THROWAWAY, RUNNER, spec, bad_option, bad_kind)
    assert seen["kinds"] == ["clouddns", "hcloud", "rfc2136", "route53", "throwaway"]
    assert seen["enum"] == seen["kinds"] == seen["schema_enum"]
    assert seen["options_schema"] == ["endpoint"]
    assert seen["loaded"] == "throwaway"
    assert seen["bad_option"] == ["unknown option 'endpiont' for a throwaway DNS provider; known: endpoint"]
    assert len(seen["bad_kind"]) == 1
    for kind in seen["kinds"]:
        assert kind in seen["bad_kind"][0]


def test_the_enum_derives_from_the_registry_and_helpers_are_not_kinds() -> None:
    assert [k.value for k in DnsProviderKind] == list(dns.kinds()) == list(dns.KINDS)
    assert not {"base", "switch"} & set(dns.kinds())
    assert all(issubclass(module.Backend, DnsBackend) for module in dns.registry().values())


def test_an_unknown_dns_kind_lists_the_valid_ones() -> None:
    with pytest.raises(
        KeyError, match="unknown DNS provider kind 'bind9'; known: clouddns, hcloud, rfc2136, route53"
    ):
        dns.get("bind9")
