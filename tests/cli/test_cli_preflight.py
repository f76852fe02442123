"""A missing secret, credential or SDK is found before anything happens: ``up`` stops before any
preview or prompt with one message listing everything missing (exit 2); ``validate`` and
``doctor`` report the same gaps."""

from __future__ import annotations

import importlib.abc
import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deplat import preflight
from deplat.providers import registry
from tests.support.cli import cli
from tests.support.local_sites import Guestbook

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT / "examples/cloud/deplat.yaml"


def with_secret(data: dict[str, Any]) -> None:
    data["services"]["web"]["secrets"] = ["GUESTBOOK_ADMIN_TOKEN"]


def test_up_with_a_missing_secret_stops_before_the_preview_with_one_message(
    make_guestbook: Callable[..., Guestbook],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GUESTBOOK_ADMIN_TOKEN", raising=False)
    book = make_guestbook(sites=2, edit=with_secret)
    assert cli("-f", str(book.spec_path), "up") == 2
    out, err = capsys.readouterr()
    assert out == ""  # no preview table, no prompt
    assert err.count("GUESTBOOK_ADMIN_TOKEN") == 2  # the message and its fix, once
    assert "`deplat up` cannot start: 1 thing missing" in err
    assert "export GUESTBOOK_ADMIN_TOKEN=..." in err
    assert not book.site_dir("local-a").exists()  # nothing was started


def test_up_json_lists_what_is_missing_as_data(
    make_guestbook: Callable[..., Guestbook],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GUESTBOOK_ADMIN_TOKEN", raising=False)
    book = make_guestbook(sites=2, edit=with_secret)
    assert cli("-f", str(book.spec_path), "up", "--yes", "--json") == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert [(m["kind"], m["name"], m["needed_by"]) for m in doc["missing"]] == [
        ("secret", "GUESTBOOK_ADMIN_TOKEN", "service web")
    ]


def test_validate_says_the_spec_is_valid_and_what_this_machine_lacks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GUESTBOOK_ADMIN_TOKEN", "DNS_TSIG_SECRET", "DEPLAT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    assert cli("-f", str(CLOUD), "validate") == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ")
    assert "secret GUESTBOOK_ADMIN_TOKEN is not set (service web needs it)" in out
    assert "secret DNS_TSIG_SECRET is not set (DNS provider ns-self needs it)" in out
    assert "no state passphrase" in out
    assert cli("-f", str(CLOUD), "--json", "validate") == 0
    missing = {m["name"] for m in json.loads(capsys.readouterr().out)["missing"]}
    assert {"GUESTBOOK_ADMIN_TOKEN", "DNS_TSIG_SECRET", "state passphrase"} <= missing


def test_doctor_fails_on_a_missing_app_secret_dns_secret_and_passphrase(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GUESTBOOK_ADMIN_TOKEN", "DNS_TSIG_SECRET", "DEPLAT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    assert cli("-f", str(CLOUD), "--json", "doctor") == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["secret GUESTBOOK_ADMIN_TOKEN"]["ok"] is False
    assert checks["secret DNS_TSIG_SECRET"]["detail"] == "not set (DNS provider ns-self needs it)"
    assert checks["state passphrase"] == {
        "name": "state passphrase",
        "ok": False,
        "detail": "not set",
        "hint": "export DEPLAT_PASSPHRASE=... (or set state.passphrase.file in the spec); never written to disk",
        "required": True,
    }


def test_doctor_says_where_the_passphrase_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEPLAT_PASSPHRASE", "a-long-enough-passphrase")
    cli("-f", str(CLOUD), "--json", "doctor")
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["state passphrase"]["ok"] is True
    assert checks["state passphrase"]["detail"] == "from DEPLAT_PASSPHRASE"


class Uninstalled(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages look uninstalled, as in an environment without an extra."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named '{fullname}'", name=fullname)
        return None


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def hide(*names: str) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in names:
                monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "meta_path", [Uninstalled(set(names)), *sys.meta_path])

    return hide


def test_a_cloud_site_without_its_sdk_names_the_extra_to_install(
    without: Callable[..., None], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUESTBOOK_ADMIN_TOKEN", "token-1234")
    without("pulumi_aws", "pulumi_hcloud")
    assert cli("-f", str(CLOUD), "up", "--yes") == 2
    err = capsys.readouterr().err
    assert "the aws SDKs are not installed (site aws-fra needs them): pip install 'deplat[aws]'" in err
    assert "pip install 'deplat[hcloud]'" in err
    assert cli("-f", str(CLOUD), "plan", "--offline") == 2
    assert "pip install 'deplat[aws]'" in capsys.readouterr().err


def test_a_dns_provider_without_its_sdk_names_the_extra(
    without: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    without("boto3")
    assert cli("-f", str(CLOUD), "dns", "status") == 2
    assert "DNS provider route53 needs them): pip install 'deplat[aws]'" in capsys.readouterr().err


def test_an_sdk_import_nobody_foresaw_still_names_its_extra(capsys: pytest.CaptureFixture[str]) -> None:
    from deplat.cli.app import app, build

    @app.command("needs-gcp", hidden=True)
    def needs_gcp() -> None:
        raise ModuleNotFoundError("No module named 'pulumi_gcp'", name="pulumi_gcp")

    build.cache_clear()
    try:
        assert cli("needs-gcp") == 2
    finally:
        app.registered_commands.pop()
        build.cache_clear()
    err = capsys.readouterr().err
    assert "the gcp SDKs are not installed (no module pulumi_gcp)" in err and "deplat[gcp]" in err


def test_every_declared_extra_is_in_pyproject_and_cloud_and_test_pull_them_all() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    declared = {p.extra for p in registry().values() if p.extra}
    assert declared == {"aws", "gcp", "hcloud"}
    assert all(name in extras for name in declared)
    assert "deplat[" + ",".join(sorted(declared | {"certs"})) + "]" in extras["cloud"]
    assert any(req.startswith("deplat[") and "cloud" in req for req in extras["test"])
    assert preflight.extra_for_module("pulumi") == "cloud"
    assert preflight.extra_for_module("pulumi_gcp") == "gcp"
    assert preflight.extra_for_module("boto3") == "aws"
    assert preflight.extra_for_module("acme.client") == "certs"


def test_certs_without_the_acme_library_names_the_certs_extra(
    without: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    without("acme", "josepy")
    assert cli("-f", str(CLOUD), "certs", "--check") == 2
    assert "pip install 'deplat[certs]'" in capsys.readouterr().err


def test_doctor_on_local_sites_needs_no_pulumi(
    without: Callable[..., None], make_guestbook: Callable[..., Guestbook], capsys: pytest.CaptureFixture[str]
) -> None:
    without("pulumi")
    book = make_guestbook(sites=2)
    assert cli("-f", str(book.spec_path), "--json", "doctor") == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["checks"]]
    # no engine check: the state backend, the secrets, and the newest snapshot of its stateful data
    assert names == ["state backend", "secrets", "backups"]
