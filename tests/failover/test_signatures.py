"""Suspension signatures: one table per provider, well formed, matching real suspension answers only."""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deplat.failover.health_checks import Health
from deplat.failover.names_probe import probe_names_sync
from deplat.failover.signatures import is_suspension, signatures_for
from deplat.providers import PROVIDERS, get
from deplat.spec.loader import load_spec

WITH_TABLES = [p for p in PROVIDERS if getattr(get(p), "SUSPENSION_SIGNATURES", None)]

# Answers a provider gives when the account is cut off: (status, body).
SUSPENDED_SAMPLES: dict[str, list[tuple[int, str]]] = {
    "aws": [
        (403, "<Error><Code>AccountSuspended</Code><Message>Your account is suspended.</Message></Error>"),
        (
            403,
            "<Error><Code>AllAccessDisabled</Code><Message>All access to this object has been disabled</Message>",
        ),
        (401, "Your account is currently blocked and not recognized as a valid account."),
    ],
    "gcp": [
        (
            403,
            '{"error": {"code": 403, "message": "The billing account for the owning project is disabled"}}',
        ),
        (403, '{"error": {"status": "PERMISSION_DENIED", "details": [{"reason": "CONSUMER_SUSPENDED"}]}}'),
        (400, "Project 1234567890 has been suspended."),
    ],
    "hcloud": [
        (403, '{"error": {"code": "account_blocked", "message": "account is blocked"}}'),
        (423, "Your account has been locked. Please contact support."),
    ],
    "local": [(403, '{"error": "AccountSuspended", "message": "The account has been suspended."}')],
}

# Ordinary failures that must never be taken for a suspension, by any provider's table.
ORDINARY = [
    (403, "<html><h1>403 Forbidden</h1></html>"),
    (403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
    (403, '{"error": {"status": "PERMISSION_DENIED", "message": "caller does not have permission"}}'),
    (401, '{"error": {"code": "unauthorized", "message": "unable to authenticate"}}'),
    (502, "<html><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></html>"),
    (503, "Service Unavailable"),
    (404, '{"error": "not found"}'),
    (200, '{"ok": true, "entries": 3, "site": "local-a"}'),
]


def test_every_provider_has_a_suspension_table() -> None:
    assert list(PROVIDERS) == WITH_TABLES


@pytest.mark.parametrize("provider", WITH_TABLES)
def test_tables_are_well_formed(provider: str) -> None:
    table = get(provider).SUSPENSION_SIGNATURES
    assert table, f"{provider}: empty table"
    for status, pattern in table:
        assert status is None or (isinstance(status, int) and 100 <= status <= 599)
        assert isinstance(pattern, str) and pattern.strip()
    assert len(signatures_for(provider)) == len(table)


@pytest.mark.parametrize("provider", sorted(SUSPENDED_SAMPLES))
def test_real_suspension_answers_match_their_providers_table(provider: str) -> None:
    signatures = signatures_for(provider)
    for status, body in SUSPENDED_SAMPLES[provider]:
        assert is_suspension(status, body, signatures), (provider, status, body)


@pytest.mark.parametrize("provider", WITH_TABLES)
@pytest.mark.parametrize(("status", "body"), ORDINARY)
def test_ordinary_failures_are_not_suspensions(provider: str, status: int, body: str) -> None:
    assert not is_suspension(status, body, signatures_for(provider))


def test_a_status_bound_signature_needs_its_status() -> None:
    signatures = signatures_for("local")
    assert is_suspension(403, "AccountSuspended", signatures)
    assert not is_suspension(500, "AccountSuspended", signatures)
    assert not is_suspension(None, "AccountSuspended", signatures)


@pytest.mark.slow
@pytest.mark.parametrize("provider", WITH_TABLES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_text_a_signature_describes_is_a_suspension(provider: str, data: st.DataObject) -> None:
    """Every signature of every table is live: text generated from its regex is recognised, at
    its own status, or at any status when the signature has none."""
    for status, rx in signatures_for(provider):
        body = data.draw(st.from_regex(rx))
        at = status if status is not None else data.draw(st.sampled_from([200, 403, 451, 503]))
        assert is_suspension(at, body, signatures_for(provider))


class Canned:
    def __init__(self, address: str, status: int, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def address() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("provider", "status", "body"),
    [(p, s, b) for p, samples in SUSPENDED_SAMPLES.items() for s, b in samples],
)
def test_a_probe_through_the_names_sees_each_providers_suspension(
    tmp_path: Path, address: str, provider: str, status: int, body: str
) -> None:
    server = Canned(address, status, body.encode())
    try:
        spec_path = tmp_path / "deplat.yaml"
        spec_path.write_text(
            f"""\
version: 1
app: gb
services:
  web:
    image: x
    ports: [{{port: {server.port}, public: true}}]
    health: {{port: {server.port}, path: /healthz}}
    local: {{command: [python3, app.py]}}
domain: {{zone: gb.test, names: [gb.test]}}
sites:
  - {{name: site-a, provider: local, role: primary, options: {{address: 127.0.0.93}}}}
  - {{name: site-b, provider: local, role: warm, options: {{address: 127.0.0.94}}}}
""",
            encoding="utf-8",
        )
        result = probe_names_sync(load_spec(spec_path), None, timeout=0.5, mapping={"gb.test": [address]})
    finally:
        server.close()
    assert result.health is Health.suspended
    assert result.checks[0].error_class == "suspended"
