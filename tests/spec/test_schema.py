"""The JSON Schema accepts every example and rejects the bad specs that are schema-level errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from deplat.spec.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "bad"

# Bad specs whose failure a JSON Schema can express (keys, types, ranges, patterns, enums).
SCHEMA_LEVEL = {
    "empty-file.yaml",
    "many-problems-at-once.yaml",
    "missing-image.yaml",
    "port-not-a-number.yaml",
    "port-out-of-range.yaml",
    "secret-name-lowercase.yaml",
    "service-name-uppercase.yaml",
    "top-level-list.yaml",
    "ttl-zero.yaml",
    "unknown-key-did-you-mean.yaml",
    "unknown-provider.yaml",
    "unknown-role.yaml",
}
# Cross-section rules (one primary, names in the zone, ...) that only `deplat validate` checks.
SEMANTIC = {
    "duplicate-site-names.yaml",
    "health-port-not-declared.yaml",
    "local-address-not-loopback.yaml",
    "local-site-without-local-command.yaml",
    "name-outside-zone.yaml",
    "no-primary.yaml",
    "only-a-primary.yaml",
    "standbys-on-primarys-provider.yaml",
    "two-primaries.yaml",
    "duplicate-key.yaml",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_json_with_documented_fields() -> None:
    schema = json.loads(json.dumps(json_schema()))
    assert schema["$schema"].endswith("2020-12/schema")
    assert "services" in schema["properties"]
    assert schema["additionalProperties"] is False


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(ROOT.glob("examples/**/deplat.yaml")), ids=lambda p: p.parent.name)
def test_schema_accepts_every_example(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
    assert errors == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCHEMA_LEVEL))
def test_schema_rejects_schema_level_bad_spec(validator: jsonschema.Draft202012Validator, name: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load((BAD / name).read_text())))


@pytest.mark.parametrize("name", sorted(SEMANTIC))
def test_schema_accepts_what_only_the_semantic_rules_catch(
    validator: jsonschema.Draft202012Validator, name: str
) -> None:
    assert list(validator.iter_errors(yaml.safe_load((BAD / name).read_text()))) == []


def test_every_bad_spec_is_classified() -> None:
    names = {p.name for p in BAD.glob("*.yaml")} - {"invalid-yaml.yaml"}
    assert names == SCHEMA_LEVEL | SEMANTIC


def test_committed_schema_file_is_current() -> None:
    committed = json.loads((ROOT / "deplat.schema.json").read_text())
    assert committed == json_schema(), "run: deplat schema -o deplat.schema.json"
