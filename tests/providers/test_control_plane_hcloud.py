"""Hetzner Cloud control-plane check against a scripted API on loopback (never the real API)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.providers import hcloud
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from tests.support.fake_api import FakeApi, fake_api

ROOT = Path(__file__).resolve().parents[2]
SITE = load_spec(ROOT / "examples/cloud/deplat.yaml").site("hetzner-fsn")
TOKEN = "hc-token-0123456789abcdef"


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": {}}})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    with fake_api() as server:
        monkeypatch.setenv("HCLOUD_ENDPOINT", f"{server.url}/v1")
        yield server


def _check(timeout: float = 2.0, token: str = TOKEN) -> tuple[bool, str, str | None]:
    return hcloud.control_plane_check(SITE, None, SecretStore(environ={"HCLOUD_TOKEN": token}), timeout)


def test_accepted_token_is_ok_after_one_authenticated_read(api: FakeApi) -> None:
    api.answer(200, json.dumps({"servers": [], "meta": {}}), path="/v1/servers")
    ok, reason, kind = _check()
    assert (ok, kind) == (True, None) and "HCLOUD_TOKEN" in reason
    [request] = api.requests
    assert request.method == "GET" and request.path == "/v1/servers?per_page=1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_unauthorized_token_is_forbidden(api: FakeApi) -> None:
    api.answer(401, _error("unauthorized", "unable to authenticate"), path="/v1/servers")
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "forbidden")
    assert "unable to authenticate (unauthorized)" in reason and TOKEN not in reason


def test_blocked_account_is_suspended(api: FakeApi) -> None:
    api.answer(403, _error("forbidden", "the account has been blocked"), path="/v1/servers")
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "suspended") and "blocked" in reason


def test_plain_forbidden_is_not_mistaken_for_suspension(api: FakeApi) -> None:
    api.answer(403, _error("forbidden", "insufficient permissions for this request"), path="/v1/servers")
    assert _check()[2] == "forbidden"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "body", "content_type", "said"),
    [
        (
            429,
            _error("rate_limit_exceeded", "limit of 3600 requests per hour reached"),
            "application/json",
            "(rate_limit_exceeded)",
        ),
        (503, "<html><body>503 Service Unavailable</body></html>", "text/html", "503"),
        (502, "", "text/plain", "502"),
    ],
)
def test_rate_limits_and_server_errors_are_transient_after_one_request(
    api: FakeApi, status: int, body: str, content_type: str, said: str
) -> None:
    api.answer(status, body, path="/v1/servers", content_type=content_type)
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "transient") and said in reason
    assert len(api.requests) == 1  # hcloud-python's own retries (429, 502) are off


def test_the_check_goes_through_hetzners_client(api: FakeApi) -> None:
    api.answer(200, json.dumps({"servers": [], "meta": {}}), path="/v1/servers")
    assert _check()[0]
    assert api.requests[0].headers["User-Agent"].startswith("deplat hcloud-python/")


@pytest.mark.parametrize(
    ("code", "kind"),
    [("resource_locked", "suspended"), ("token_readonly", "forbidden"), ("maintenance", "transient")],
)
def test_documented_codes_are_classified_from_the_clients_exception(
    api: FakeApi, code: str, kind: str
) -> None:
    api.answer(423 if code == "resource_locked" else 403, _error(code, f"answer {code}"), path="/v1/servers")
    ok, reason, got = _check()
    assert (ok, got) == (False, kind) and f"({code})" in reason


def test_a_200_that_is_not_the_api_is_fatal_not_a_crash(api: FakeApi) -> None:
    api.answer(200, json.dumps({"hello": "captive portal"}), path="/v1/servers")
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "fatal") and "did not answer as the Hetzner Cloud API" in reason


@pytest.mark.slow
def test_an_api_that_never_answers_fails_transient_within_the_timeout(api: FakeApi) -> None:
    api.hang(path="/v1/servers")
    started = time.monotonic()
    ok, reason, kind = _check(timeout=0.3)
    assert (ok, kind) == (False, "transient") and "did not answer" in reason
    assert time.monotonic() - started < 2.0


def test_nothing_listening_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HCLOUD_ENDPOINT", f"http://127.0.0.1:{port}/v1")
    assert _check(timeout=1.0)[::2] == (False, "transient")


def test_missing_token_is_forbidden_without_a_call(api: FakeApi) -> None:
    ok, reason, kind = hcloud.control_plane_check(SITE, None, SecretStore(environ={}), 1.0)
    assert (ok, kind) == (False, "forbidden") and reason.startswith("no credentials: HCLOUD_TOKEN")
    assert api.requests == []


def test_token_echoed_by_the_api_never_reaches_the_reason(api: FakeApi) -> None:
    api.answer(401, _error("unauthorized", f"token {TOKEN} is invalid"), path="/v1/servers")
    ok, reason, kind = _check()
    assert (ok, kind) == (False, "forbidden") and TOKEN not in reason and "***" in reason


def test_the_site_secret_names_the_token(api: FakeApi) -> None:
    site = SITE.model_copy(update={"credentials": SITE.credentials.model_copy(update={"secret": "HC_FSN"})})
    api.answer(200, json.dumps({"servers": [], "meta": {}}), path="/v1/servers")
    store = SecretStore(environ={"HC_FSN": "other-token-xyz1"})
    assert hcloud.control_plane_check(site, None, store, 2.0)[0]
    assert api.requests[0].headers["Authorization"] == "Bearer other-token-xyz1"
    assert hcloud.control_plane_check(site, None, SecretStore(environ={"HCLOUD_TOKEN": TOKEN}), 2.0)[2] == (
        "forbidden"
    )
