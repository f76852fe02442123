"""Error classes from real provider messages, and the suspension signatures probes use."""

from __future__ import annotations

import re

import pytest

from deplat import providers
from deplat.errors import ErrorClass

# (provider, message as the provider or the Pulumi engine shows it, class)
CASES = [
    (
        "aws",
        "creating EC2 Instance: operation error EC2: RunInstances, https response error StatusCode: 400, "
        "RequestID: 1f2e, api error Blocked: This account is currently blocked and not recognized as a "
        "valid account. Please contact aws-verification@amazon.com if you have questions.",
        "suspended",
    ),
    (
        "aws",
        "api error OptInRequired: You are not subscribed to this service. Please go to http://aws.amazon.com",
        "suspended",
    ),
    ("aws", "AccountSuspendedException: the account is suspended", "suspended"),
    ("aws", "reading S3 Bucket: AllAccessDisabled: All access to this object has been disabled", "suspended"),
    (
        "aws",
        "api error UnauthorizedOperation: You are not authorized to perform this operation.",
        "forbidden",
    ),
    (
        "aws",
        "api error AuthFailure: AWS was not able to validate the provided access credentials",
        "forbidden",
    ),
    (
        "aws",
        "api error InvalidClientTokenId: The security token included in the request is invalid.",
        "forbidden",
    ),
    ("aws", "api error RequestLimitExceeded: Request limit exceeded.", "transient"),
    ("aws", "api error Throttling: Rate exceeded", "transient"),
    (
        "aws",
        "api error InsufficientInstanceCapacity: We currently do not have sufficient t3.small capacity",
        "transient",
    ),
    ("aws", "api error InvalidAMIID.NotFound: The image id '[ami-1]' does not exist", "fatal"),
    (
        "gcp",
        "googleapi: Error 403: The billing account for the owning project is disabled in state closed, "
        "accountDisabled",
        "suspended",
    ),
    (
        "gcp",
        "Error 403: Project shop-standby (#8084485) has billing disabled. Please enable it., forbidden",
        "suspended",
    ),
    (
        "gcp",
        "Error 403: Caller does not have required permission to use project x. USER_PROJECT_DENIED",
        "suspended",
    ),
    (
        "gcp",
        "Error 403: Project 'projects/shop-standby' has been suspended., CONSUMER_SUSPENDED",
        "suspended",
    ),
    (
        "gcp",
        "Error 403: Required 'compute.instances.create' permission for 'projects/x', forbidden",
        "forbidden",
    ),
    (
        "gcp",
        "rpc error: code = PermissionDenied desc = PERMISSION_DENIED: caller lacks permission",
        "forbidden",
    ),
    ("gcp", "Error 429: Quota exceeded ... rateLimitExceeded RATE_LIMIT_EXCEEDED", "transient"),
    (
        "gcp",
        "rpc error: code = Unavailable desc = UNAVAILABLE: the service is currently unavailable",
        "transient",
    ),
    ("gcp", "Error 400: Invalid value for field 'resource.machineType', invalid", "fatal"),
    ("hcloud", "error creating server: account is blocked (forbidden)", "suspended"),
    ("hcloud", "error creating server: unable to authenticate (unauthorized)", "forbidden"),
    ("hcloud", "insufficient permissions for this request (forbidden)", "forbidden"),
    ("hcloud", "server is locked (there is already an action running) (locked)", "transient"),
    ("hcloud", "limit of 3600 requests per hour reached (rate_limit_exceeded)", "transient"),
    ("hcloud", "internal server error (server_error)", "transient"),
    ("hcloud", "server type cx99 not found (invalid_input)", "fatal"),
    ("hcloud", "the token is read-only (token_readonly)", "forbidden"),
    ("hcloud", "the resource has changed during the request, please retry (conflict)", "transient"),
]


@pytest.mark.parametrize(("provider", "text", "kind"), CASES)
def test_classify_error_from_real_messages(provider: str, text: str, kind: str) -> None:
    assert providers.get(provider).classify_error(text) == kind


@pytest.mark.parametrize("provider", ["aws", "gcp", "hcloud", "local"])
def test_error_table_rows_are_valid_regexes_with_a_class_and_a_source(provider: str) -> None:
    module = providers.get(provider)
    assert module.ERROR_TABLE
    for row in module.ERROR_TABLE:
        re.compile(row.pattern)
        assert isinstance(row.error_class, ErrorClass) and row.error_class is not ErrorClass.FATAL
        assert len(row.source) > 10, f"{provider}: the row {row.pattern!r} does not say where it comes from"
    for status, pattern in module.SUSPENSION_SIGNATURES:
        re.compile(pattern)
        assert status is None or 100 <= status <= 599


def _suspended(provider: str, status: int | None, body: str) -> bool:
    table = providers.get(provider).SUSPENSION_SIGNATURES
    return any((want is None or want == status) and re.search(rx, body, re.I) for want, rx in table)


@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        (
            "aws",
            403,
            "<Error><Code>AllAccessDisabled</Code><Message>All access to this object has been disabled",
            True,
        ),
        ("aws", 403, "<Error><Code>AccessDenied</Code></Error>", False),
        ("aws", 200, "welcome to the guestbook", False),
        (
            "gcp",
            403,
            '{"error": {"message": "The billing account for the owning project is disabled in state closed"}}',
            True,
        ),
        ("gcp", 404, "not found", False),
        ("hcloud", 403, '{"error": {"code": "forbidden", "message": "account is blocked"}}', True),
        ("hcloud", 403, '{"error": {"code": "forbidden", "message": "insufficient permissions"}}', False),
        ("hcloud", 502, "bad gateway", False),
    ],
)
def test_suspension_signatures_tell_a_suspended_account_from_other_answers(
    provider: str, status: int, body: str, expected: bool
) -> None:
    assert _suspended(provider, status, body) is expected
