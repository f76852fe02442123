"""The real thing, opt-in (``DEPLAT_CLOUD_TESTS=1``; marker ``cloud``).

- ``test_real_cli_*``: the real ``pulumi`` CLI and no cloud account: an inline program with no
  resources, stack config (a secret set through stdin), outputs, status and destroy against the
  embedded file backend. Proves that what deplat sends is what the real CLI accepts.
- ``test_real_site_*``: one real site of a real spec, stood up and destroyed again (costs money for a
  few minutes). Needs ``DEPLAT_CLOUD_SPEC`` (a spec file; default examples/cloud/deplat.yaml),
  ``DEPLAT_CLOUD_SITE`` (the site's name) and that provider's credentials; skipped without them.

    DEPLAT_CLOUD_TESTS=1 DEPLAT_PASSPHRASE=... python -m pytest tests/cloud -m cloud -v
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deplat import operations
from deplat.cli import run
from deplat.engine import driver as driver_mod
from deplat.engine import passphrase, workspace
from deplat.providers.base import HostingProvider
from deplat.secrets import SecretStore
from deplat.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cloud-suite-secret-5c7d9e"

SPEC = """\
version: 1
app: deplat-engine-check
services:
  web:
    image: ghcr.io/deplat/guestbook:1.0
    ports: [{port: 8080, public: true}]
domain: {zone: example.org, names: [example.org]}
sites:
  - {name: check-a, provider: aws, role: primary, region: eu-central-1, zone: eu-central-1a}
  - {name: check-b, provider: aws, role: warm, region: eu-central-1, zone: eu-central-1a}
"""


@pytest.fixture
def no_resource_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pulumi_path: str) -> Iterator[Any]:
    """A spec whose sites' program creates no resources: only the engine is exercised, no cloud."""
    import pulumi

    path = tmp_path / "deplat.yaml"
    path.write_text(SPEC)
    monkeypatch.setenv("DEPLAT_PASSPHRASE", os.environ.get("DEPLAT_PASSPHRASE") or "cloud-suite-passphrase")
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    workspace._commands.clear()
    passphrase.forget()

    def program(spec: Any, site: Any, secrets: Any) -> Any:
        def run_it() -> None:
            config = pulumi.Config("check")
            pulumi.export("ipv4", "192.0.2.10")
            pulumi.export("greeting", config.require("greeting"))
            pulumi.export("token", config.require_secret("token"))

        return run_it

    class NoResourceProvider(HostingProvider):
        """A provider whose program registers nothing: the real engine runs without a cloud."""

        name = "check"

        def provider_config(
            self, site: Any, secrets: Any = None, *, spec_dir: Any = None
        ) -> dict[str, tuple[str, bool]]:
            return {"check:greeting": ("hello", False), "check:token": (TOKEN, True)}

    module = NoResourceProvider()
    monkeypatch.setattr(driver_mod, "site_provider", lambda site: module)
    monkeypatch.setattr(driver_mod, "site_program", program)
    spec = load_spec(path)
    yield spec
    operations.destroy_sites(spec, None, SecretStore(spec))
    passphrase.forget()


def test_real_cli_stands_up_reads_and_destroys_sites(no_resource_sites: Any) -> None:
    spec = no_resource_sites
    results = operations.up_sites(spec, None, SecretStore(spec))
    assert [(r.site, r.ok) for r in results] == [("check-a", True), ("check-b", True)], results
    for r in results:
        assert r.outputs == {"ipv4": "192.0.2.10", "greeting": "hello", "token": "********"}
    again = operations.up_sites(spec, ["check-a"], SecretStore(spec))
    assert again[0].ok and not {k for k in again[0].changes if k != "same"}
    statuses = {s.site: s for s in operations.status_sites(spec, None, SecretStore(spec))}
    assert statuses["check-a"].running and statuses["check-a"].last_update
    for file in (spec.base_dir / ".deplat").rglob("*"):
        if file.is_file():
            assert TOKEN not in file.read_text(errors="replace"), file
    gone = operations.destroy_sites(spec, None, SecretStore(spec))
    assert all(r.ok for r in gone)
    assert not any(s.exists for s in operations.status_sites(spec, None, SecretStore(spec)))


def test_real_cli_preview_changes_nothing(no_resource_sites: Any) -> None:
    from deplat.operations import preview_sites

    spec = no_resource_sites
    previews = preview_sites(spec, ["check-a"], SecretStore(spec))
    assert previews[0].ok, previews
    assert not operations.status_sites(spec, ["check-a"], SecretStore(spec))[0].running


@pytest.fixture
def real_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    site = os.environ.get("DEPLAT_CLOUD_SITE")
    if not site:
        pytest.skip("set DEPLAT_CLOUD_SITE (and DEPLAT_CLOUD_SPEC) to stand up one real site")
    source = Path(os.environ.get("DEPLAT_CLOUD_SPEC") or ROOT / "examples" / "cloud" / "deplat.yaml")
    for item in source.parent.iterdir():
        if item.is_file():
            shutil.copy(item, tmp_path / item.name)
    spec_path = tmp_path / source.name
    workspace._commands.clear()
    passphrase.forget()
    yield spec_path, site
    run(["-f", str(spec_path), "destroy", "--yes", "--site", site, "--json"])


def test_real_site_up_status_destroy(
    real_site: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    spec_path, site = real_site
    assert run(["-f", str(spec_path), "doctor", "--json"]) in (0, 1)
    capsys.readouterr()
    assert run(["-f", str(spec_path), "up", "--yes", "--site", site, "--json"]) == 0, capsys.readouterr()
    doc = json.loads(capsys.readouterr().out)
    assert doc["sites"][0]["outputs"].get("ipv4")
    assert run(["-f", str(spec_path), "status", "--site", site, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sites"][0]["running"] is True
    assert run(["-f", str(spec_path), "destroy", "--yes", "--site", site, "--json"]) == 0
