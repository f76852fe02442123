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
    # OptInRequired: a service or Marketplace subscription to accept, or an account not yet active
    (
        "aws",
        "api error OptInRequired: You are not subscribed to this service. Please go to http://aws.amazon.com",
        "forbidden",
    ),
    (
        "aws",
        "creating EC2 Instance: operation error EC2: RunInstances, https response error StatusCode: 401, "
        "api error OptInRequired: In order to use this AWS Marketplace product you need to accept terms "
        "and subscribe.",
        "forbidden",
    ),
    ("aws", "api error PendingVerification: Your account is pending verification.", "forbidden"),
    # no EC2 code: SES's AccountSuspendedException pauses sending, it is no account suspension
    ("aws", "AccountSuspendedException: the account is suspended", "fatal"),
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
        "capacity",
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
        "forbidden",
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
    (
        "gcp",
        "Error 400: Billing must be enabled for activation of service 'compute.googleapis.com' in project "
        "'shop-standby' to proceed., failedPrecondition UREQ_PROJECT_BILLING_NOT_FOUND",
        "suspended",
    ),
    (
        "gcp",
        "Error 403: The zone 'projects/x/zones/us-central1-b' does not have enough resources available to "
        "fulfill the request., ZONE_RESOURCE_POOL_EXHAUSTED",
        "capacity",
    ),
    ("hcloud", "error creating server: account is blocked (forbidden)", "suspended"),
    ("hcloud", "error creating server: unable to authenticate (unauthorized)", "forbidden"),
    ("hcloud", "insufficient permissions for this request (forbidden)", "forbidden"),
    ("hcloud", "server is locked (there is already an action running) (locked)", "transient"),
    ("hcloud", "limit of 3600 requests per hour reached (rate_limit_exceeded)", "transient"),
    ("hcloud", "internal server error (server_error)", "transient"),
    ("hcloud", "server type cx99 not found (invalid_input)", "fatal"),
    ("hcloud", "the token is read-only (token_readonly)", "forbidden"),
    ("hcloud", "the resource has changed during the request, please retry (conflict)", "transient"),
    # as the engine shows them: hcloud-go adds the response's correlation id after the code
    ("hcloud", "error during placement (placement_error, 7a1c9e3f2b4d5a6e)", "capacity"),
    ("hcloud", "server location disabled (resource_unavailable, 0f3d2c1b)", "capacity"),
    ("hcloud", "no space left in location (no_space_left_in_location, 1b2c)", "capacity"),
    ("hcloud", "internal server error (server_error, 5e1f77c0a3b2d4e6)", "transient"),
    ("hcloud", "cannot perform operation due to maintenance (maintenance, 9a8b7c6d)", "transient"),
    ("hcloud", "server is locked (locked, 42ab)", "transient"),
    ("hcloud", "request timed out (timeout, 42ab)", "transient"),
    ("hcloud", "the token is read-only (token_readonly, 3c4d5e6f)", "forbidden"),
    ("hcloud", "resource is locked, please contact support (resource_locked, 77aa)", "suspended"),
    ("hcloud", "primary ip is already assigned (primary_ip_assigned, 1234abcd)", "fatal"),
    ("hcloud", "server type cx22 is deprecated (invalid_server_type, 1234abcd)", "fatal"),
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
