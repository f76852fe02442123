"""A cloud site whose provider API says "suspended" is classified suspended by the probe's control-plane
check, through each provider module's own ``control_plane_check``; all on loopback fake APIs."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.failover import control_plane
from deplat.failover.probe import Health, probe_site
from deplat.secrets import SecretStore
from deplat.sites import Addresses
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec
from tests.support.fake_api import FakeApi, fake_api

ROOT = Path(__file__).resolve().parents[2]
HCLOUD_TOKEN = "hc-secret-token-abcdef0123"
GCP_TOKEN = "ya29.secret-gcp-token-0123"

SUSPENDED = {
    "aws-fra": (
        403,
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>Blocked</Code><Message>'
        "This account is currently blocked and not recognized as a valid account. Please contact "
        "aws-verification@amazon.com if you have questions.</Message></Error></Errors>"
        "<RequestID>1</RequestID></Response>",
        "text/xml",
    ),
    "hetzner-fsn": (
        403,
        json.dumps({"error": {"code": "forbidden", "message": "account is blocked", "details": {}}}),
        "application/json",
    ),
    "gcp-ew": (
        403,
        json.dumps(
            {
                "error": {
                    "code": 403,
                    "message": "The billing account for the owning project is disabled in state closed",
                    "errors": [{"reason": "accountDisabled", "domain": "global"}],
                    "status": "PERMISSION_DENIED",
                }
            }
        ),
        "application/json",
    ),
}


@pytest.fixture
def cloud_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Spec, FakeApi]]:
    """examples/cloud with every provider's API pointed at one scripted server, env keys for AWS."""
    shutil.copy(ROOT / "examples/cloud/deplat.yaml", tmp_path / "deplat.yaml")
    raw = (tmp_path / "deplat.yaml").read_text().replace("credentials: {profile: guestbook}", "")
    (tmp_path / "deplat.yaml").write_text(raw)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAILOVERTEST0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-key-value")
    with fake_api() as api:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", api.url)
        monkeypatch.setenv("HCLOUD_ENDPOINT", f"{api.url}/v1")
        monkeypatch.setenv("GOOGLE_COMPUTE_CUSTOM_ENDPOINT", f"{api.url}/compute/v1/")
        yield load_spec(tmp_path / "deplat.yaml"), api


def _secrets(spec: Spec) -> SecretStore:
    return SecretStore(spec, environ={"HCLOUD_TOKEN": HCLOUD_TOKEN, "GOOGLE_OAUTH_ACCESS_TOKEN": GCP_TOKEN})


@pytest.mark.slow
@pytest.mark.parametrize("site", ["aws-fra", "hetzner-fsn", "gcp-ew"])
def test_suspended_provider_api_makes_a_suspended_control_plane(
    cloud_spec: tuple[Spec, FakeApi], site: str
) -> None:
    spec, api = cloud_spec
    status, body, content_type = SUSPENDED[site]
    api.answer(status, body, content_type=content_type)
    ok, reason, kind = control_plane.check(spec, site, _secrets(spec), 2.0)
    assert (ok, kind) == (False, "suspended")
    # the API's own words: the HTTP status, or (through hcloud's client) the documented error code
    assert reason != "not checked" and ("403" in reason or "(forbidden)" in reason)
    for secret in (HCLOUD_TOKEN, GCP_TOKEN, "aws-secret-key-value"):
        assert secret not in reason
    assert len(api.requests) == 1


@pytest.mark.slow
@pytest.mark.parametrize("site", ["aws-fra", "hetzner-fsn", "gcp-ew"])
def test_accepting_provider_api_makes_a_passing_control_plane(
    cloud_spec: tuple[Spec, FakeApi], site: str
) -> None:
    spec, api = cloud_spec
    if site == "aws-fra":
        body = (
            '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId>'
            "<regionInfo><item><regionName>eu-central-1</regionName>"
            "<regionEndpoint>ec2.eu-central-1.amazonaws.com</regionEndpoint></item></regionInfo>"
            "</DescribeRegionsResponse>"
        )
        api.answer(200, body, content_type="text/xml")
    elif site == "hetzner-fsn":  # the servers list as hcloud's client reads it
        pages = '{"page": 1, "per_page": 1, "previous_page": null, "next_page": null, "last_page": 1}'
        api.answer(200, f'{{"servers": [], "meta": {{"pagination": {pages}}}}}')
    else:
        api.answer(200, "{}")
    ok, reason, kind = control_plane.check(spec, site, _secrets(spec), 2.0)
    assert (ok, kind) == (True, None) and reason != "not checked"
    [request] = api.requests
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256" if site == "aws-fra" else "Bearer ")


def test_probe_classifies_the_cloud_site_suspended_from_its_control_plane(
    cloud_spec: tuple[Spec, FakeApi],
) -> None:
    spec, api = cloud_spec
    status, body, content_type = SUSPENDED["hetzner-fsn"]
    api.answer(status, body, content_type=content_type)
    probe = asyncio.run(probe_site(spec, "hetzner-fsn", Addresses(), timeout=1.0, secrets=_secrets(spec)))
    assert probe.health is Health.suspended and probe.control_plane_class == "suspended"
    assert "blocked" in probe.reason and HCLOUD_TOKEN not in json.dumps(probe.to_dict())


@pytest.mark.slow
def test_a_silent_provider_api_is_a_bounded_failed_check(cloud_spec: tuple[Spec, FakeApi]) -> None:
    spec, api = cloud_spec
    api.hang()
    started = time.monotonic()
    ok, _, kind = control_plane.check(spec, "gcp-ew", _secrets(spec), 0.5)
    assert not ok and kind in ("transient", "timeout")
    assert time.monotonic() - started < 1.5
