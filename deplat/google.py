"""Google Cloud APIs for deplat's own calls (not Pulumi's): credentials, transports, error texts.

Used by the GCP hosting provider's control-plane check (``deplat.providers.gcp``: Compute Engine
over httpx) and the Cloud DNS backend (``deplat.dns.clouddns``: google-cloud-dns over requests).
google-auth, httpx and requests are imported only inside functions: importing this module costs
nothing.

Credentials: ``find_credentials`` says whether any are available without a network call (a key
file of the site's own, ``GOOGLE_CREDENTIALS``, ``GOOGLE_OAUTH_ACCESS_TOKEN``,
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application default credentials);
``access_token`` gets a bearer token from them, the way the Pulumi google provider would.
``service_account_credentials`` / ``key_credentials`` / ``token_credentials`` /
``default_credentials`` build google-auth credentials from a service-account JSON, any key JSON,
a bare OAuth access token, or Application Default Credentials; ``refresh`` mints their token
through a transport (``httpx_transport`` or ``requests_transport``) and masks it.
``authorized_session`` is a requests session bounded per request by its caller.

Errors: ``response_error_text`` reads a Google API error answer (the JSON error model),
``call_error_text`` a google-api-core ``GoogleAPICallError``; ``scrub`` takes a token out of a text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from deplat.secrets import Masker, SecretStore

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ACCESS_TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"
_CREDENTIALS_CACHE: dict[str, Any] = {}  # key material's sha256 (or "adc:...") -> google-auth credentials


def find_credentials(
    own: Path | None,
    whose: str,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[bool, str]:
    """(found, where or why not): ``own`` is a key file the spec names (``whose`` says where).

    Looks at files and env only; no network call."""
    env = os.environ if environ is None else environ
    if own is not None:
        if own.is_file():
            return True, f"credentials file {own}"
        return False, f"credentials file {own} ({whose}) does not exist"
    if env.get("GOOGLE_CREDENTIALS"):
        return True, "GOOGLE_CREDENTIALS is set"
    if env.get(ACCESS_TOKEN_ENV):  # a raw OAuth token, as the google provider takes it
        return True, f"{ACCESS_TOKEN_ENV} is set"
    adc = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if adc:
        if Path(adc).is_file():
            return True, f"GOOGLE_APPLICATION_CREDENTIALS ({adc})"
        return False, f"GOOGLE_APPLICATION_CREDENTIALS points at {adc}, which does not exist"
    config_dir = Path(env.get("CLOUDSDK_CONFIG") or (home or Path.home()) / ".config" / "gcloud")
    default = config_dir / "application_default_credentials.json"
    if default.is_file():
        return True, f"application default credentials ({default})"
    return False, (
        "no GCP credentials: set credentials.file in the site (a service-account JSON), or "
        "GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`"
    )


def service_account_credentials(info: dict[str, Any], scopes: list[str]) -> Any:
    """google-auth credentials from a service-account key's JSON (raises ``ValueError`` for another)."""
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(info, scopes=scopes)


def key_credentials(info: dict[str, Any], scopes: list[str]) -> Any:
    """google-auth credentials from the user's own key JSON (service account, user, or other)."""
    import warnings

    import google.auth

    if info.get("type") == "service_account":
        return service_account_credentials(info, scopes)
    if info.get("type") == "authorized_user":
        from google.oauth2.credentials import Credentials

        return Credentials.from_authorized_user_info(info, scopes=scopes)
    with warnings.catch_warnings():  # the spec's own key file, as Pulumi itself loads it
        warnings.simplefilter("ignore", DeprecationWarning)
        credentials, _ = google.auth.load_credentials_from_dict(info, scopes=scopes)
    return credentials


def token_credentials(token: str) -> Any:
    """google-auth credentials for a bare OAuth access token (nothing to refresh it with)."""
    import google.oauth2.credentials

    return google.oauth2.credentials.Credentials(token)


def default_credentials(scopes: list[str]) -> Any:
    """Application Default Credentials (raises ``DefaultCredentialsError`` when there are none)."""
    import google.auth

    credentials, _ = google.auth.default(scopes=scopes)
    return credentials


def refresh(credentials: Any, transport: Any, masker: Masker | None = None) -> Any:
    """``credentials`` with a token: minted through ``transport`` unless the one held is still valid
    (one token call an hour, not one a call); the token goes to ``masker``."""
    if not credentials.valid:
        credentials.refresh(transport)
    if masker is not None and credentials.token:
        masker.add(str(credentials.token))
    return credentials


def access_token(
    own: Path | None, whose: str, secrets: SecretStore | None, client: Any
) -> tuple[str | None, str]:
    """(token, where it came from) or (None, why there is none). May ask the token endpoint.

    The order is the Pulumi google provider's: a key file the spec names (``own``), else a raw token
    in ``GOOGLE_OAUTH_ACCESS_TOKEN`` (the secrets, then the environment), else ``GOOGLE_CREDENTIALS``
    (a key's JSON or its path), else application default credentials. Credentials are kept per key
    (and per ADC environment) so a token still valid is reused; ``client`` (an ``httpx.Client``)
    carries the token call."""
    import hashlib
    import json

    raw = None if own is not None else (secrets.get(ACCESS_TOKEN_ENV) if secrets else None)
    raw = raw or (None if own is not None else os.environ.get(ACCESS_TOKEN_ENV))
    if raw:
        return raw, ACCESS_TOKEN_ENV
    found, why = find_credentials(own, whose)
    if not found:
        return None, why
    contents = os.environ.get("GOOGLE_CREDENTIALS")
    if own is not None:
        text = own.read_text(encoding="utf-8")
    elif contents and not contents.lstrip().startswith("{"):
        text = Path(contents).expanduser().read_text(encoding="utf-8")
    else:
        text = contents or ""
    adc_env = ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG")
    adc = ":".join(["adc", *(os.environ.get(name, "") for name in adc_env)])
    key = hashlib.sha256(text.encode()).hexdigest() if text else adc
    credentials = _CREDENTIALS_CACHE.get(key)
    if credentials is None:
        scopes = [CLOUD_PLATFORM_SCOPE]
        credentials = key_credentials(json.loads(text), scopes) if text else default_credentials(scopes)
    refresh(credentials, httpx_transport(client), secrets.masker if secrets is not None else None)
    _CREDENTIALS_CACHE[key] = credentials
    return credentials.token, why


class Answer(NamedTuple):
    """A Google API's answer to ``get``: its HTTP status and, unless it is 200, its error text
    (``response_error_text``, the token scrubbed)."""

    status: int
    error: str


class NoAnswer(Exception):
    """``get`` made no call or got no answer. ``kind``: "no credentials", "unusable credentials"
    (an unreadable or malformed key), "refused" (a google-auth error, e.g. the token endpoint's
    ``invalid_grant``) or "unreachable" (a transport error or timeout, the token call's too). The
    message never carries a token."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def get(
    url: str,
    params: Mapping[str, str],
    *,
    own: Path | None,
    whose: str,
    secrets: SecretStore | None,
    timeout: float,
) -> Answer:
    """One authorized ``GET url`` with a token from ``access_token``; every request (the token
    call's too) is bounded by ``timeout``. Raises ``NoAnswer``."""
    import google.auth.exceptions
    import httpx

    token: str | None = None
    with httpx.Client(timeout=timeout) as client:
        try:
            token, where = access_token(own, whose, secrets, client)
            if token is None:
                raise NoAnswer("no credentials", f"no credentials: {where}")
            response = client.get(
                url,
                params=dict(params),
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except (httpx.TransportError, google.auth.exceptions.TransportError) as exc:
            reason = f"Google API did not answer ({type(exc).__name__}): {exc}"
            raise NoAnswer("unreachable", scrub(reason, token)) from None
        except (OSError, ValueError) as exc:  # an unreadable or malformed key file
            reason = f"unusable credentials: {type(exc).__name__}: {exc}"
            raise NoAnswer("unusable credentials", reason) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise NoAnswer("refused", scrub(f"{type(exc).__name__}: {exc}", token)) from None
    if response.status_code == 200:
        return Answer(200, "")
    return Answer(response.status_code, scrub(response_error_text(response), token))


def httpx_transport(client: Any) -> Any:
    """A google-auth transport over ``client`` (an ``httpx.Client``, which bounds every request)."""
    import google.auth.exceptions
    import google.auth.transport
    import httpx

    class _Response(google.auth.transport.Response):
        def __init__(self, response: httpx.Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Mapping[str, str]:
            return self._response.headers

        @property
        def data(self) -> bytes:
            return self._response.content

    class _Request(google.auth.transport.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **_: Any,
        ) -> _Response:
            try:
                answer = client.request(method, url, content=body, headers=dict(headers or {}))
            except httpx.HTTPError as exc:
                raise google.auth.exceptions.TransportError(f"{type(exc).__name__}: {exc}") from exc
            return _Response(answer)

    return _Request()


def requests_transport() -> Any:
    """google-auth's own transport over requests."""
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


def authorized_session(credentials: Any, timeout: Callable[[], float]) -> Any:
    """A google-auth ``AuthorizedSession`` whose every request takes its timeout from ``timeout()``
    (which may raise instead, to refuse a request) and which never refreshes on an answer: the
    credentials are refreshed before (or are a bare token that cannot be), one request per call."""
    from google.auth.transport.requests import AuthorizedSession

    class BoundedSession(AuthorizedSession):
        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = timeout()
            return super().request(method, url, *args, **kwargs)

    return BoundedSession(credentials, refresh_status_codes=())


def response_error_text(response: Any) -> str:
    """``Error <status>: <message> (<reasons>)`` for a Google API error answer (an httpx or
    requests response): the reasons of its ``errors`` and ``details`` and its ``status``, the
    words the error tables match (``PERMISSION_DENIED``, ``BILLING_DISABLED`` ...)."""
    try:
        error = response.json().get("error") or {}
        reasons = [str(e.get("reason")) for e in error.get("errors") or [] if e.get("reason")]
        reasons += [str(d.get("reason")) for d in error.get("details") or [] if d.get("reason")]
        if error.get("status"):
            reasons.append(str(error["status"]))
        tail = f" ({', '.join(dict.fromkeys(reasons))})" if reasons else ""
        return f"Error {response.status_code}: {error.get('message', '')}{tail}"
    except Exception:  # not the API's JSON
        return f"Error {response.status_code}: {' '.join(response.text.split())[:300]}"


def call_error_text(exc: Any) -> str:
    """A ``GoogleAPICallError``'s message and its errors' reasons.

    Unlike ``response_error_text`` no status in front: the exception carries it (``exc.code``),
    and its caller (the Cloud DNS backend) classifies by the status and this text apart."""
    reasons = [e.get("reason", "") for e in getattr(exc, "errors", None) or [] if isinstance(e, dict)]
    reason = f" ({', '.join(r for r in reasons if r)})" if any(reasons) else ""
    return f"{getattr(exc, 'message', '') or exc}{reason}"


def scrub(text: str, token: str | None) -> str:
    """``text`` with ``token`` (when there is one) replaced by ``***``."""
    return text.replace(token, "***") if token else text
