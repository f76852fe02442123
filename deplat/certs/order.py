"""One ACME order for the app's names, its DNS-01 challenges answered through deplat's DNS providers.

The challenge record ``_acme-challenge.<name>`` is written on EVERY configured DNS provider: the CA
may ask any of the zone's nameservers, and with several providers each one serves the zone.
The records are removed again whatever happens. Errors come out as ``OperationFailed`` saying
which step failed (writing a record on which provider, the CA's validation and what it saw, the
ACME server unreachable); nothing secret is ever in them.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deplat.dns.base import Deadline, DnsBackend, DnsError
from deplat.errors import OperationFailed

CHALLENGE_TTL = 60
#: seconds for a DNS provider to write or delete one challenge record
DNS_SECONDS = 30.0
#: seconds for the CA to validate and issue once the challenges are answered
ISSUE_SECONDS = 180


@dataclass(frozen=True)
class Issued:
    fullchain_pem: str
    key_pem: str
    account_key_json: str


def new_account_key() -> Any:
    import josepy
    from cryptography.hazmat.primitives.asymmetric import rsa

    return josepy.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def new_certificate_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def obtain(
    names: Sequence[str],
    directory_url: str,
    account_key_json: str | None,
    backends: Sequence[DnsBackend],
    *,
    email: str | None = None,
    ca_bundle: str | None = None,
    propagation_seconds: float = 0.0,
) -> Issued:
    """A new certificate for ``names`` (absolute, no trailing dot) from the ACME server at
    ``directory_url``. ``account_key_json`` None: a new account key is made (returned in ``Issued``)."""
    import josepy

    if not backends:
        raise OperationFailed(
            "certificates need a DNS provider to answer the ACME DNS-01 challenge",
            hint="add a dns: entry to the spec (rfc2136, route53, clouddns or hcloud)",
        )
    key = josepy.JWKRSA.json_loads(account_key_json) if account_key_json else new_account_key()
    client = _client(directory_url, key, email, ca_bundle)
    key_pem = new_certificate_key_pem()
    from acme import crypto_util

    csr_pem = crypto_util.make_csr(key_pem, list(names))
    order = _acme_call(directory_url, "create the order", lambda: client.new_order(csr_pem))
    records = _challenges(order, key)
    written: list[tuple[DnsBackend, str]] = []
    try:
        for record, values in records.items():
            for backend in backends:
                _dns(
                    backend,
                    "write",
                    record,
                    lambda b=backend, r=record, v=values: b.set_txt(
                        r, v, CHALLENGE_TTL, Deadline(DNS_SECONDS)
                    ),
                )
                written.append((backend, record))
        if records and propagation_seconds:
            time.sleep(propagation_seconds)
        for challb, _record in _pending(order):
            _acme_call(
                directory_url,
                "answer the challenge",
                lambda c=challb: client.answer_challenge(c, c.chall.response(key)),
            )
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ISSUE_SECONDS)
        done = _acme_call(
            directory_url, "get the certificate", lambda: client.poll_and_finalize(order, deadline)
        )
    finally:
        for backend, record in written:
            # a left-over challenge record is harmless; the next order replaces it
            with contextlib.suppress(DnsError):
                backend.delete_txt(record, Deadline(DNS_SECONDS))
    return Issued(str(done.fullchain_pem), key_pem.decode(), key.json_dumps())


def _client(directory_url: str, key: Any, email: str | None, ca_bundle: str | None) -> Any:
    from acme import client as acme_client
    from acme import errors as acme_errors
    from acme import messages

    verify: Any = ca_bundle or True
    net = acme_client.ClientNetwork(key, user_agent="deplat", verify_ssl=verify, timeout=30)
    directory = _acme_call(
        directory_url,
        "read the ACME directory",
        lambda: acme_client.ClientV2.get_directory(directory_url, net),
    )
    client = acme_client.ClientV2(directory, net)
    registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
    try:
        net.account = client.new_account(registration)
    except acme_errors.ConflictError as exc:  # the key already has an account: use it
        net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    except Exception as exc:
        raise _acme_failure(directory_url, "register the ACME account", exc) from None
    return client


def _challenges(order: Any, key: Any) -> dict[str, list[str]]:
    """Challenge record name -> the TXT values it must serve (a name and its wildcard share one)."""
    records: dict[str, list[str]] = {}
    for challb, record in _pending(order):
        records.setdefault(record, []).append(challb.chall.validation(key))
    return records


def _pending(order: Any) -> list[tuple[Any, str]]:
    from acme import challenges, messages

    found = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue  # the CA still remembers a recent validation of this name
        name = authz.body.identifier.value
        dns01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)]
        if not dns01:
            raise OperationFailed(f"the ACME server offers no dns-01 challenge for {name}")
        found.append((dns01[0], dns01[0].chall.validation_domain_name(name).rstrip(".").lower()))
    return found


def _dns(backend: DnsBackend, verb: str, record: str, call: Any) -> None:
    try:
        call()
    except DnsError as exc:
        raise OperationFailed(
            f"cannot {verb} the ACME challenge record {record} on DNS provider {backend.name}: {exc.message}",
            hint="the certificate needs every DNS provider writable; fix the provider's key or token",
        ) from None


def _acme_call(directory_url: str, what: str, call: Any) -> Any:
    try:
        return call()
    except OperationFailed:
        raise
    except Exception as exc:
        raise _acme_failure(directory_url, what, exc) from None


def _acme_failure(directory_url: str, what: str, exc: Exception) -> OperationFailed:
    from acme import errors as acme_errors
    from acme import messages

    if isinstance(exc, acme_errors.ValidationError):
        seen = []
        for authz in exc.failed_authzrs:
            for challb in authz.body.challenges:
                if challb.error is not None:
                    seen.append(f"{authz.body.identifier.value}: {challb.error.detail or challb.error.typ}")
        return OperationFailed(
            "the ACME server could not validate the DNS challenge: " + "; ".join(seen),
            hint="check that the DNS providers in the spec serve the zone the CA asks (its NS records)",
        )
    if isinstance(exc, acme_errors.TimeoutError):
        return OperationFailed(f"the ACME server did not finish within {ISSUE_SECONDS} s ({what})")
    if isinstance(exc, messages.Error):
        return OperationFailed(f"the ACME server refused to {what}: {exc.detail or exc.typ}")
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return OperationFailed(
            f"cannot {what}: the HTTPS certificate of {directory_url} is not trusted",
            hint="for a private or test ACME server set certificates.ca_bundle to its CA certificate",
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return OperationFailed(
            f"cannot reach the ACME server {directory_url} to {what}: {type(exc).__name__}"
        )
    return OperationFailed(f"cannot {what} at {directory_url}: {type(exc).__name__}: {exc}")
