"""Fixtures for the engine layer: the fake `pulumi` first on PATH, stand-in provider modules, a cloud spec.

The fake (tests/fakes/bin/pulumi) records every invocation (argv, env, cwd, stdin) as a JSON line;
``FakePulumi`` reads them back for assertions.
"""

from __future__ import annotations

import io
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
from tests.support.cli import Cli, cli

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
    monkeypatch.setattr(driver_mod, "site_program", lambda spec, site, secrets, **kw: lambda: None)
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


@pytest.fixture
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin is not a terminal (and empty): nothing can be asked, `--yes` is needed."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture
def cloud_cli(
    cloud_spec_path: Path, fake_pulumi: FakePulumi, stand_ins: dict[str, StandInProvider], no_tty: None
) -> Cli:
    """``deplat -f <the cloud spec> ARGS...`` in process: the fake `pulumi` CLI, stand-in providers,
    no terminal. Returns the exit code."""
    return lambda *args: cli("-f", str(cloud_spec_path), *args)


# ---------------------------------------------------------------------------- the real pulumi CLI

REAL_SPEC = """\
version: 1
app: engine-check
services:
  web:
    image: ghcr.io/acme/web:1.0
    ports: [{port: 8080, public: true}]
domain: {zone: example.org, names: [example.org]}
sites:
  - {name: real-a, provider: aws, role: primary, region: eu-central-1, zone: eu-central-1a}
  - {name: real-b, provider: hcloud, role: warm, region: fsn1}
"""
REAL_TOKEN = "real-engine-token-SECRET-4d3c2b1a"


class RealStandIn(StandInProvider):
    """The provider of the real-engine tests' sites: no plugin unless a test names one, no cloud,
    and config that tests may change (``wanted_plugins``, ``config``)."""

    def __init__(self, config: dict[str, tuple[str, bool]] | None = None) -> None:
        super().__init__("aws")
        self.wanted_plugins: list[tuple[str, str]] = []
        self.config = dict(config or {})

    def plugins(self) -> list[tuple[str, str]]:
        return list(self.wanted_plugins)

    def provider_config(
        self, site: Any, secrets: Any = None, *, spec_dir: Path | None = None
    ) -> dict[str, tuple[str, bool]]:
        return dict(self.config)

    def check_credentials(
        self, site: Any, secrets: Any = None, *, spec_dir: Path | None = None
    ) -> tuple[bool, str]:
        return True, "none needed"


@dataclass
class RealEngine:
    """A spec whose sites run ``program`` (settable per test) under the real CLI; no provider plugin.

    ``provider`` stands in for every site's provider (config, credentials check, plugins, classifier).
    """

    spec: Spec
    bin_dir: Path
    version: str
    pulumi_home: Path
    provider: RealStandIn
    program: Any = None

    @property
    def pulumi(self) -> str:
        return str(self.bin_dir / "pulumi")

    @property
    def state(self) -> Path:
        return self.spec.base_dir / ".deplat" / "state"

    def site(self, name: str = "real-a") -> Any:
        return self.spec.site(name)


def default_program() -> None:
    import pulumi

    class Box(pulumi.ComponentResource):
        """A resource that needs no provider plugin: the engine registers it in the state."""

        def __init__(self, name: str) -> None:
            super().__init__("deplat:test:Box", name)
            self.register_outputs({})

    config = pulumi.Config("check")
    Box("box")
    pulumi.export("ipv4", "192.0.2.10")
    pulumi.export("greeting", config.require("greeting"))
    pulumi.export("token", config.require_secret("token"))


@pytest.fixture
def real_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RealEngine:
    """The real ``pulumi`` first on PATH (skips, or fails under DEPLAT_REAL_ENGINE=required, without it)."""
    from tests.support.real_engine import OFFLINE_ENV, find_real_pulumi, real_pulumi_dir

    bin_dir = real_pulumi_dir()
    version = find_real_pulumi()[1]
    path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != FAKE_BIN]
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), *path]))
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "pulumi-home"
    monkeypatch.setenv("PULUMI_HOME", str(home))
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEPLAT_PASSPHRASE", PASSPHRASE)
    workspace._commands.clear()
    passphrase.forget()
    passphrase.set_prompt(None)
    provider = RealStandIn({"check:greeting": ("hello", False), "check:token": (REAL_TOKEN, True)})
    engine = RealEngine(
        spec=load_spec(write_spec(tmp_path / "app", REAL_SPEC)),
        bin_dir=bin_dir,
        version=version,
        pulumi_home=home,
        provider=provider,
        program=default_program,
    )
    monkeypatch.setattr(driver_mod, "site_provider", lambda site: engine.provider)
    monkeypatch.setattr(driver_mod, "site_program", lambda spec, site, secrets: engine.program)
    yield engine
    workspace._commands.clear()
    passphrase.forget()
