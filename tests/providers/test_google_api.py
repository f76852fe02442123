"""deplat.google's own behaviour: error texts, token scrubbing, key types, token minting, the bounded
session. The Google APIs are faked on loopback (tests.support.fake_api); google-auth, httpx and
requests are the real ones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import requests

from deplat import google as google_api
from deplat.secrets import Masker
from tests.support.fake_api import FakeApi, fake_api

SCOPES = [google_api.CLOUD_PLATFORM_SCOPE]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


def _service_account(token_uri: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "guestbook-dns",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "dns@guestbook-dns.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def test_an_error_answer_names_its_status_message_and_each_reason_once() -> None:
    body = {
        "error": {
            "code": 403,
            "message": "Billing account for project is disabled",
            "errors": [{"reason": "accountDisabled"}, {"message": "no reason here"}],
            "details": [{"reason": "BILLING_DISABLED"}, {"reason": "accountDisabled"}],
            "status": "PERMISSION_DENIED",
        }
    }
    response = httpx.Response(403, json=body)

    assert google_api.response_error_text(response) == (
        "Error 403: Billing account for project is disabled "
        "(accountDisabled, BILLING_DISABLED, PERMISSION_DENIED)"
    )


def test_an_error_answer_that_is_not_json_is_one_line_of_at_most_300_characters() -> None:
    page = "<html>\n  <body>Bad   Gateway</body>\n</html>" + "x" * 400
    text = google_api.response_error_text(httpx.Response(502, text=page))

    assert text.startswith("Error 502: <html> <body>Bad Gateway</body> </html>x")
    assert "\n" not in text and len(text) == len("Error 502: ") + 300


def test_a_client_error_names_its_message_and_its_reasons() -> None:
    from google.api_core import exceptions

    error = exceptions.Forbidden("zone is locked", errors=[{"reason": "forbidden"}, {"reason": ""}, "odd"])

    assert google_api.call_error_text(error) == "zone is locked (forbidden)"
    assert google_api.call_error_text(exceptions.NotFound("no such zone")) == "no such zone"


def test_scrub_hides_the_token_and_leaves_text_without_one_alone() -> None:
    assert google_api.scrub("Bearer ya29.abc rejected: ya29.abc", "ya29.abc") == "Bearer *** rejected: ***"
    assert google_api.scrub("no credentials", None) == "no credentials"


def test_only_a_service_account_key_makes_service_account_credentials() -> None:
    user_key = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}

    with pytest.raises(ValueError):
        google_api.service_account_credentials(user_key, SCOPES)
    assert google_api.key_credentials(user_key, SCOPES).refresh_token == "r"


def test_a_service_account_key_gets_one_token_while_it_is_valid_and_the_token_is_masked(api: FakeApi) -> None:
    minted = "ya29.minted-for-the-dns-backend"
    api.answer(200, json.dumps({"access_token": minted, "expires_in": 3600}), path="/token")
    credentials = google_api.service_account_credentials(_service_account(f"{api.url}/token"), SCOPES)
    masker = Masker()

    for _ in range(2):
        google_api.refresh(credentials, google_api.requests_transport(), masker)

    assert credentials.token == minted
    assert [r.path for r in api.requests] == ["/token"]
    assert minted not in masker.text(f"Authorization: Bearer {minted}")


def test_a_bounded_session_takes_each_request_timeout_from_its_caller(api: FakeApi) -> None:
    api.hang(path="/slow")
    session = google_api.authorized_session(google_api.token_credentials("ya29.bare"), lambda: 0.3)

    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        session.get(f"{api.url}/slow")

    assert time.monotonic() - started < 2.0
    assert api.requests[0].headers["authorization"] == "Bearer ya29.bare"


def test_a_bounded_session_sends_nothing_when_its_caller_refuses(api: FakeApi) -> None:
    def out_of_time() -> float:
        raise TimeoutError("the deadline has passed")

    session = google_api.authorized_session(google_api.token_credentials("ya29.bare"), out_of_time)

    with pytest.raises(TimeoutError):
        session.get(f"{api.url}/zones")
    assert api.requests == []


def test_a_bounded_session_does_not_refresh_on_an_unauthorized_answer(api: FakeApi) -> None:
    api.answer(401, json.dumps({"error": {"code": 401, "message": "expired"}}), path="/zones")
    session = google_api.authorized_session(google_api.token_credentials("ya29.expired"), lambda: 2.0)

    assert session.get(f"{api.url}/zones").status_code == 401
    assert len(api.requests) == 1
