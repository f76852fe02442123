"""GCP control-plane check against a scripted Compute API (and token endpoint) on loopback."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.providers import gcp
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from tests.support.fake_api import FakeApi, fake_api

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "examples/cloud/deplat.yaml")
SITE = SPEC.site("gcp-ew")
TOKEN = "ya29.raw-token-0123456789"
PROJECT_PATH = "/compute/v1/projects/guestbook-standby"


def _error(status: int, message: str, reason: str, state: str, detail: str | None = None) -> str:
    error: dict[str, object] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": state,
    }
    if detail:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": detail}]
    return json.dumps({"error": error})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Iterator[FakeApi]:
    with fake_api() as server:
        monkeypatch.setenv("GOOGLE_COMPUTE_CUSTOM_ENDPOINT", f"{server.url}/compute/v1/")
        yield server


def _check(timeout: float = 2.0) -> tuple[bool, str, str | None]:
    return gcp.control_plane_check(
        SITE, SPEC, SecretStore(environ={"GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN}), timeout
    )


def test_accepted_token_reads_the_project(api: FakeApi) -> None:
    api.answer(200, json.dumps({"name": "guestbook-standby"}), path=PROJECT_PATH)
    ok, reason, kind = _check()
    assert (ok, kind) == (True, None) and "guestbook-standby" in reason
    [request] = api.requests
    assert request.method == "GET" and request.path == f"{PROJECT_PATH}?fields=name"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        _error(
            403,
            "This API method requires billing to be enabled. Please enable billing on project #1234.",
            "accessNotConfigured",
            "PERMISSION_DENIED",
            "BILLING_DISABLED",
        ),
        _error(
            403,
            "The billing account for the owning project is disabled in state absent",
            "accountDisabled",
            "PERMISSION_DENIED",
        ),
        _error(
            403, "Project 1234 has been suspended.", "forbidden", "PERMISSION_DENIED", "USER_PROJECT_DENIED"
        ),
    ],
    ids=["billing-required", "billing-account-disabled", "project-suspended"],
)
def test_billing_disabled_or_suspended_project_is_suspended(api: FakeApi, body: str) -> None:
    api.answer(403, body, path=PROJECT_PATH)
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "suspended") and reason.startswith("Error 403: ")


def test_doctor_says_when_the_compute_api_is_off_in_a_fresh_project(api: FakeApi) -> None:
    message = (
        "Compute Engine API has not been used in project 1234 before or it is disabled. Enable it by "
        "visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview?project=1234"
    )
    api.answer(
        403,
        _error(403, message, "accessNotConfigured", "PERMISSION_DENIED", "SERVICE_DISABLED"),
        path=PROJECT_PATH,
    )
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "forbidden")
    assert "the Compute Engine API is off in project guestbook-standby" in reason
    assert "`deplat up` turns it on" in reason


def test_doctor_says_when_billing_is_off(api: FakeApi) -> None:
    message = "The billing account for the owning project is disabled in state absent"
    api.answer(403, _error(403, message, "accountDisabled", "PERMISSION_DENIED"), path=PROJECT_PATH)
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "suspended")
    assert "billing is off for project guestbook-standby" in reason


def test_doctor_accounts_shows_the_billing_answer_of_the_gcp_api(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from deplat.engine.doctor import run_checks

    message = "The billing account for the owning project is disabled in state closed"
    api.answer(403, _error(403, message, "accountDisabled", "PERMISSION_DENIED"), path=PROJECT_PATH)
    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi CLI: its check fails, the others still run
    shutil.copy(ROOT / "examples/cloud/deplat.yaml", tmp_path / "deplat.yaml")  # its .deplat goes there
    spec = load_spec(tmp_path / "deplat.yaml")
    only_gcp = spec.model_copy(update={"sites": [spec.site("gcp-ew")]})
    secrets = SecretStore(environ={"GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN})
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)

    checks = {c.name: c for c in run_checks(only_gcp, secrets, accounts=True)}

    account = checks["account gcp-ew"]
    assert not account.ok and "billing is off for project guestbook-standby" in account.detail
    assert account.hint is not None and "deplat failover" in account.hint
    assert TOKEN not in account.detail
    assert "account gcp-ew" not in {c.name for c in run_checks(only_gcp, secrets)}  # only when asked


def test_missing_permission_is_forbidden_not_suspended(api: FakeApi) -> None:
    message = "Required 'compute.projects.get' permission for 'projects/guestbook-standby'"
    api.answer(403, _error(403, message, "forbidden", "PERMISSION_DENIED"), path=PROJECT_PATH)
    assert _check()[::2] == (False, "forbidden")


def test_revoked_token_is_forbidden_and_never_echoed(api: FakeApi) -> None:
    message = f"Request had invalid authentication credentials ({TOKEN})."
    api.answer(401, _error(401, message, "authError", "UNAUTHENTICATED"), path=PROJECT_PATH)
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "forbidden") and TOKEN not in reason and "401" in reason


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, _error(429, "Quota exceeded", "rateLimitExceeded", "RESOURCE_EXHAUSTED")),
        (503, _error(503, "The service is currently unavailable.", "backendError", "UNAVAILABLE")),
        (500, "<html>Internal Server Error</html>"),
    ],
)
def test_rate_limits_and_server_errors_are_transient(api: FakeApi, status: int, body: str) -> None:
    api.answer(status, body, path=PROJECT_PATH)
    assert _check()[::2] == (False, "transient")


@pytest.mark.slow
def test_an_api_that_never_answers_fails_transient_within_the_timeout(api: FakeApi) -> None:
    api.hang(path=PROJECT_PATH)
    started = time.monotonic()
    ok, reason, kind = _check(timeout=0.3)
    assert (ok, kind) == (False, "transient") and "did not answer" in reason
    assert time.monotonic() - started < 2.0


def test_no_credentials_is_forbidden_without_a_call(api: FakeApi) -> None:
    ok, reason, kind = gcp.control_plane_check(SITE, SPEC, SecretStore(environ={}), 1.0)
    assert (ok, kind) == (False, "forbidden") and reason.startswith("no credentials: ")
    assert api.requests == []


def _service_account(path: Path, token_uri: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "guestbook-standby",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "deplat@guestbook-standby.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))


@pytest.fixture
def spec_with_key_file(tmp_path: Path, api: FakeApi) -> tuple[object, object]:
    shutil.copy(ROOT / "examples/cloud/deplat.yaml", tmp_path / "deplat.yaml")
    (tmp_path / "keys").mkdir()
    _service_account(tmp_path / "keys" / "sa.json", f"{api.url}/token")
    spec = load_spec(tmp_path / "deplat.yaml")
    site = spec.site("gcp-ew")
    site = site.model_copy(
        update={"credentials": site.credentials.model_copy(update={"file": "keys/sa.json"})}
    )
    return spec, site


@pytest.mark.slow
def test_service_account_file_beside_the_spec_gets_a_token_then_reads(
    api: FakeApi, spec_with_key_file: tuple[object, object]
) -> None:
    spec, site = spec_with_key_file
    minted = "ya29.minted-by-fake-token-endpoint"
    api.answer(
        200, json.dumps({"access_token": minted, "expires_in": 3600, "token_type": "Bearer"}), path="/token"
    )
    api.answer(200, json.dumps({"name": "guestbook-standby"}), path=PROJECT_PATH)
    store = SecretStore(environ={})
    ok, _, kind = gcp.control_plane_check(site, spec, store, 2.0)  # type: ignore[arg-type]
    assert (ok, kind) == (True, None)
    token_request, project_request = api.requests
    assert token_request.method == "POST" and b"grant_type" in token_request.body
    assert project_request.headers["Authorization"] == f"Bearer {minted}"
    assert minted not in store.masker.text(f"token {minted}")


@pytest.mark.slow
def test_service_account_refused_by_the_token_endpoint_is_forbidden(
    api: FakeApi, spec_with_key_file: tuple[object, object]
) -> None:
    spec, site = spec_with_key_file
    refusal = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    api.answer(400, json.dumps(refusal), path="/token")
    ok, reason, kind = gcp.control_plane_check(site, spec, SecretStore(environ={}), 2.0)  # type: ignore[arg-type]
    assert (ok, kind) == (False, "forbidden") and "invalid_grant" in reason
    assert all(not r.path.startswith(PROJECT_PATH) for r in api.requests)


def test_malformed_key_file_is_forbidden_without_a_call(
    api: FakeApi, spec_with_key_file: tuple[object, object], tmp_path: Path
) -> None:
    spec, site = spec_with_key_file
    (tmp_path / "keys" / "sa.json").write_text("{not json")
    ok, reason, kind = gcp.control_plane_check(site, spec, SecretStore(environ={}), 2.0)  # type: ignore[arg-type]
    assert (ok, kind) == (False, "forbidden") and reason.startswith("unusable credentials")
    assert api.requests == []


@pytest.mark.slow
def test_a_minted_token_is_reused_while_valid(
    api: FakeApi, spec_with_key_file: tuple[object, object]
) -> None:
    spec, site = spec_with_key_file
    api.answer(200, json.dumps({"access_token": "ya29.reused-token", "expires_in": 3600}), path="/token")
    api.answer(200, json.dumps({"name": "guestbook-standby"}), path=PROJECT_PATH)
    for _ in range(3):
        assert gcp.control_plane_check(site, spec, SecretStore(environ={}), 2.0)[0]  # type: ignore[arg-type]
    paths = [r.path.split("?")[0] for r in api.requests]
    assert paths == ["/token", PROJECT_PATH, PROJECT_PATH, PROJECT_PATH]
