"""Credentials found without network calls; stack config; the plugins each site needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deplat.providers import aws, gcp, hcloud
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "examples/cloud/deplat.yaml")
AWS, HCLOUD, GCP = SPEC.site("aws-fra"), SPEC.site("hetzner-fsn"), SPEC.site("gcp-ew")


def test_aws_profile_is_found_in_the_credentials_file(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[guestbook]\naws_access_key_id = AKIA\n")
    ok, reason = aws.check_credentials(AWS, None, environ={}, home=tmp_path)
    assert ok and "guestbook" in reason


def test_aws_profile_in_config_file_counts(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile guestbook]\nregion = eu-central-1\n")
    assert aws.check_credentials(AWS, None, environ={}, home=tmp_path)[0]


def test_aws_missing_profile_says_how_to_create_it(tmp_path: Path) -> None:
    ok, reason = aws.check_credentials(AWS, None, environ={"AWS_ACCESS_KEY_ID": "x"}, home=tmp_path)
    assert not ok and "aws configure --profile guestbook" in reason


def test_aws_env_keys_are_enough_without_a_profile(tmp_path: Path) -> None:
    site = AWS.model_copy(update={"credentials": AWS.credentials.model_copy(update={"profile": None})})
    env = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}
    assert aws.check_credentials(site, None, environ=env, home=tmp_path)[0]
    assert not aws.check_credentials(site, None, environ={}, home=tmp_path)[0]


def test_gcp_application_credentials_file_must_exist(tmp_path: Path) -> None:
    key = tmp_path / "sa.json"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    ok, reason = gcp.check_credentials(GCP, None, environ=env, home=tmp_path)
    assert not ok and "does not exist" in reason
    key.write_text("{}")
    assert gcp.check_credentials(GCP, None, environ=env, home=tmp_path)[0]


def test_gcp_gcloud_default_credentials_count(tmp_path: Path) -> None:
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    assert gcp.check_credentials(GCP, None, environ={}, home=tmp_path)[0]
    assert not gcp.check_credentials(GCP, None, environ={}, home=tmp_path / "empty")[0]


def test_hcloud_needs_only_the_api_token() -> None:
    ok, reason = hcloud.check_credentials(HCLOUD, SecretStore(SPEC, environ={}), environ={})
    assert not ok and "HCLOUD_TOKEN" in reason and "S3" not in reason
    secrets = SecretStore(SPEC, environ={"HCLOUD_TOKEN": "tok-123456"})
    ok, reason = hcloud.check_credentials(HCLOUD, secrets, environ={})
    assert ok and "tok-123456" not in reason


def test_provider_config_per_site(monkeypatch: pytest.MonkeyPatch) -> None:
    assert aws.provider_config(AWS) == {
        "aws:region": ("eu-central-1", False),
        "aws:profile": ("guestbook", False),
    }
    assert gcp.provider_config(GCP) == {
        "gcp:project": ("guestbook-standby", False),
        "gcp:region": ("europe-west4", False),
        "gcp:zone": ("europe-west4-a", False),
    }
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    assert hcloud.provider_config(HCLOUD, SecretStore(SPEC, environ={"HCLOUD_TOKEN": "tok-9"})) == {
        "hcloud:token": ("tok-9", True)
    }
    assert hcloud.provider_config(HCLOUD, SecretStore(SPEC, environ={})) == {}


@pytest.mark.parametrize(
    ("module", "sdk"), [(aws, "pulumi_aws"), (gcp, "pulumi_gcp"), (hcloud, "pulumi_hcloud")]
)
def test_plugin_version_comes_from_the_installed_sdk(module: object, sdk: str) -> None:
    import importlib.util

    found = importlib.util.find_spec(sdk)
    assert found is not None and found.submodule_search_locations
    meta = json.loads((Path(found.submodule_search_locations[0]) / "pulumi-plugin.json").read_text())
    assert module.provider.plugins() == [(meta["name"], meta["version"])]  # type: ignore[attr-defined]


def test_hetzner_sites_need_only_the_hcloud_plugin() -> None:
    assert [name for name, _ in hcloud.provider.plugins()] == ["hcloud"]
