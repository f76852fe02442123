"""Every example, and every starter that `deplat init` writes, is a valid spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from deplat.spec import load_spec, load_text
from deplat.spec.starter import KINDS, starter_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/**/deplat.yaml"))


def test_there_are_examples() -> None:
    assert {p.parent.name for p in EXAMPLES} >= {"guestbook", "cloud"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.source == path.resolve()
    assert len([s for s in spec.sites if s.role.value == "primary"]) == 1


def test_cloud_example_spans_three_providers_and_two_dns_providers() -> None:
    spec = load_spec(ROOT / "examples/cloud/deplat.yaml")
    assert {s.provider.value for s in spec.sites} == {"aws", "gcp", "hcloud"}
    assert spec.primary.provider.value == "aws"
    assert len({d.provider for d in spec.dns}) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_starter_spec_validates(kind: str) -> None:
    spec = load_text(starter_text(kind), f"{kind}.yaml")
    assert spec.app == "myapp"
