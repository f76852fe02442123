"""The provider registry: a new hosting provider is one module, and nothing else changes.

The throwaway provider below is seen by a fresh interpreter only (``tests.support.extra_module``);
no file of deplat is touched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deplat import providers
from deplat.providers.base import Capabilities, HostingProvider
from deplat.spec.model import Provider
from tests.support.extra_module import APP, run_with_module, seen_with_module

THROWAWAY = '''
"""A throwaway provider: one server and its address, as a Pulumi program."""
from typing import Any

from pydantic import Field

from deplat.errors import ErrorClass
from deplat.providers.base import Capabilities, ErrorRow, HostingProvider, ProviderOptions


class Options(ProviderOptions):
    flavour: str | None = Field(None, description="the server flavour")


class Throwaway(HostingProvider):
    name = "throwaway"
    capabilities = Capabilities(runs_locally=False, pulumi_program=True, has_vm=True)
    Options = Options
    ERROR_TABLE = (ErrorRow(r"AccountFrozen", ErrorClass.SUSPENDED, "a test's own words"),)

    def build_site(self, ctx: Any) -> dict[str, Any]:
        import pulumi

        server = pulumi.CustomResource(
            "throwaway:index:Server", ctx.resource_name("vm"), {"flavour": "s", "ipv4": None}
        )
        return {"ipv4": server.ipv4, "url": ctx.url}  # type: ignore[attr-defined]

    def mock_outputs(self, typ: str, name: str, n: int) -> dict[str, Any]:
        return {"ipv4": "192.0.2.77"} if typ == "throwaway:index:Server" else {}


provider = Throwaway()
'''

SPEC = (
    APP
    + """sites:
  - {name: new-a, provider: throwaway, role: primary, options: {flavour: small}}
  - {name: aws-b, provider: aws, role: warm, region: eu-central-1}
"""
)

RUNNER = """
import json
import sys

from deplat.errors import SpecError
from deplat.plan import plan_offline
from deplat.providers import get, names, provider_of
from deplat.spec.loader import load_spec
from deplat.spec.model import Provider
from deplat.spec.schema import json_schema

spec = load_spec(sys.argv[2])
site = spec.site("new-a")
schema = json_schema()["$defs"]["Site"]
rules = {r["if"]["properties"]["provider"]["const"]: r["then"] for r in schema["allOf"]}
try:
    load_spec(sys.argv[3])
    bad = None
except SpecError as exc:
    bad = [p.message for p in exc.problems]
[plan] = plan_offline(spec, [site], parallel=False)
print(json.dumps({
    "names": list(names()),
    "enum": [p.value for p in Provider],
    "schema_enum": json_schema()["$defs"]["Provider"]["enum"],
    "options_schema": rules["throwaway"]["properties"]["options"]["properties"],
    "bad": bad,
    "classified": provider_of(site).classify_error("error: AccountFrozen since noon"),
    "plan": {"kind": plan.kind, "types": [r.type for r in plan.resources], "outputs": plan.outputs},
}))
"""


@pytest.mark.slow
def test_a_new_provider_is_one_module_that_validates_appears_in_the_schema_and_plans(tmp_path: Path) -> None:
    spec = tmp_path / "deplat.yaml"
    spec.write_text(SPEC)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("flavour: small", "flavor: small"))
    extra = tmp_path / "more_providers"
    seen = seen_with_module(extra, "deplat.providers", "throwaway", THROWAWAY, RUNNER, spec, bad)
    assert seen["names"] == ["aws", "gcp", "hcloud", "local", "throwaway"]
    assert seen["enum"] == seen["names"] and "throwaway" in seen["schema_enum"]
    assert seen["options_schema"]["flavour"]["description"] == "the server flavour"
    assert seen["bad"] == [
        "unknown option 'flavor' for throwaway sites (did you mean 'flavour'?); known: flavour"
    ]
    assert seen["classified"] == "suspended"
    assert seen["plan"] == {
        "kind": "pulumi",
        "types": ["throwaway:index:Server"],
        "outputs": {"ipv4": "192.0.2.77", "url": "https://shop.example.org"},
    }


def test_the_enum_and_providers_derive_from_the_registry() -> None:
    assert [p.value for p in Provider] == list(providers.names()) == list(providers.PROVIDERS)
    assert all(isinstance(p, HostingProvider) for p in providers.registry().values())


def test_an_unknown_provider_name_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="unknown provider 'digitalocean'; known: aws, gcp, hcloud, local"):
        providers.get("digitalocean")


def test_capabilities_say_what_a_site_is_without_naming_providers() -> None:
    local = providers.get("local").capabilities
    assert local == Capabilities(runs_locally=True, pulumi_program=False, has_vm=False, object_storage=False)
    for name in ("aws", "gcp", "hcloud"):
        caps = providers.get(name).capabilities
        assert caps.pulumi_program and caps.has_vm and not caps.runs_locally


@pytest.mark.slow
def test_a_module_without_a_provider_object_is_refused(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import deplat.providers as p
        try:
            p.registry()
        except TypeError as exc:
            print(exc)
        """
    )
    run = run_with_module(tmp_path / "extra", "deplat.providers", "halfdone", "X = 1\n", code)
    assert "halfdone exposes no `provider`" in run.stdout, run.stderr
