"""Fixtures for the engine layer: the fake `pulumi` first on PATH, stand-in provider modules, a cloud spec.

The fake (tests/fakes/bin/pulumi) records every invocation (argv, env, cwd, stdin) as a JSON line;
``FakePulumi`` reads them back for assertions.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deplat.engine import driver as driver_mod
from deplat.engine import passphrase, workspace
from deplat.providers.base import HostingProvider
from deplat.spec import load_spec
from deplat.spec.model import Spec

FAKE_BIN = Path(__file__).resolve().parents[1] / "fakes" / "bin"

PASSPHRASE = "correct-horse-battery-staple-42"
HCLOUD_TOKEN = "hc-token-SECRET-9f8e7d6c"
ADMIN_TOKEN = "admin-token-SECRET-1a2b3c"

SPEC = """\
version: 1
app: shop
services:
  web:
    image: ghcr.io/acme/web:1.0
    ports: [{port: 8080, public: true}]
    secrets: [SHOP_ADMIN_TOKEN]
domain: {zone: shop.example.org, names: [shop.example.org]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1, zone: eu-central-1a}
  - {name: hc-b, provider: hcloud, role: warm, region: fsn1, credentials: {secret: HCLOUD_TOKEN}}
  - {name: gcp-c, provider: gcp, role: cold, region: europe-west4, zone: europe-west4-a,
     options: {project: shop-standby}}
"""


@dataclass
class FakePulumi:
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]

    def commands(self, *words: str) -> list[dict[str, Any]]:
        """Calls whose positional words start with ``words`` (``--non-interactive`` etc. ignored)."""
        out = []
        for call in self.calls():
            positional = [a for a in call["argv"] if not a.startswith("-")]
            if positional[: len(words)] == list(words):
                out.append(call)
        return out

    def scenarios(self, **by_stack: str) -> None:
        table = {k.replace("_", "-"): v for k, v in by_stack.items()}
        self.monkeypatch.setenv("FAKE_PULUMI_SCENARIOS", json.dumps(table))


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    log = tmp_path / "pulumi-calls.jsonl"
    # the fake runs on this interpreter, found directly (a pyenv shim would double its start-up time)
    python_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKE_BIN), python_dir, os.environ["PATH"]]))
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("FAKE_PULUMI_HOME", str(tmp_path / "pulumi-home"))
    for name in (
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "FAKE_PULUMI_SCENARIOS",
        "FAKE_PULUMI_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEPLAT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("HCLOUD_TOKEN", HCLOUD_TOKEN)
    monkeypatch.setenv("SHOP_ADMIN_TOKEN", ADMIN_TOKEN)
    # AWS keys as `up` checks them before it starts (the fake CLI never uses them)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-access-key-for-tests")
    monkeypatch.setenv("HCLOUD_S3_ACCESS_KEY", "fake-hetzner-s3-access-key")
    monkeypatch.setenv("HCLOUD_S3_SECRET_KEY", "fake-hetzner-s3-secret-key")
    monkeypatch.setenv("GOOGLE_CREDENTIALS", '{"type": "service_account"}')
    workspace._commands.clear()
    passphrase.forget()
    passphrase.set_prompt(None)
    yield FakePulumi(log, monkeypatch)
    workspace._commands.clear()
    passphrase.forget()


def _classify(text: str) -> str:
    if re.search(r"AccountSuspended|account is (currently )?(blocked|suspended)", text):
        return "suspended"
    if re.search(r"UnauthorizedOperation|AccessDenied|StatusCode: 403|unauthorized|Error 403", text):
        return "forbidden"
    if re.search(
        r"RequestLimitExceeded|Throttl|rate.limit|StatusCode: 5\d\d|Error 5\d\d|timeout", text, re.I
    ):
        return "transient"
    return "fatal"


class StandInProvider(HostingProvider):
    """A provider as the engine sees it, reduced to what the tests need (no cloud SDK, no plugin
    lookup); tests may replace its hooks on the instance."""

    versions: ClassVar[dict[str, str]] = {"aws": "7.51.1", "hcloud": "1.43.3", "gcp": "10.2.0"}

    def __init__(self, name: str) -> None:
        self.stand_in_for = name

    def classify_error(self, text: str) -> Any:
        return _classify(text)

    def plugins(self) -> list[tuple[str, str]]:
        return [(self.stand_in_for, self.versions[self.stand_in_for])]

    def provider_config(
        self, site: Any, secrets: Any = None, *, spec_dir: Path | None = None
    ) -> dict[str, tuple[str, bool]]:
        if self.stand_in_for == "aws":
            return {"aws:region": (site.region, False)}
        if self.stand_in_for == "hcloud":
            return {
                "hcloud:token": (secrets.require(site.credentials.secret or "HCLOUD_TOKEN", "hcloud"), True)
            }
        return {"gcp:project": (site.options.get("project", ""), False), "gcp:region": (site.region, False)}

    def check_credentials(
        self, site: Any, secrets: Any = None, *, spec_dir: Path | None = None
    ) -> tuple[bool, str]:
        if self.stand_in_for == "hcloud":
            secret = site.credentials.secret or "HCLOUD_TOKEN"
            return (True, f"token from {secret}") if secrets.get(secret) else (False, f"{secret} is not set")
        return True, "standard sources"


def stand_in_provider(name: str) -> StandInProvider:
    return StandInProvider(name)


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> dict[str, StandInProvider]:
    """Stand-in providers and an empty site program (the fake CLI never runs programs)."""
    modules = {n: stand_in_provider(n) for n in ("aws", "hcloud", "gcp")}
    monkeypatch.setattr(driver_mod, "site_provider", lambda site: modules[site.provider.value])
    monkeypatch.setattr(driver_mod, "site_program", lambda spec, site, secrets: lambda: None)
    return modules


def write_spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deplat.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def cloud_spec_path(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "app")


@pytest.fixture
def cloud_spec(cloud_spec_path: Path) -> Spec:
    return load_spec(cloud_spec_path)
