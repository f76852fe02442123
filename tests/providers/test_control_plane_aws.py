"""AWS control-plane check: moto's EC2 on loopback with real key checks, and a scripted EC2 for the
answers moto cannot give (a blocked or unsubscribed account, throttling, an API that never answers)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.providers import aws
from deplat.spec.loader import load_spec
from tests.support.fake_api import FakeApi, fake_api

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# A bound, not a wait: a check that succeeds returns as soon as moto answers. moto's first EC2 call
# loads its EC2 backend (seconds on a busy machine); the fixture makes it before any test runs.
MOTO_BOUND = 30.0
SITE = load_spec(ROOT / "examples/cloud/deplat.yaml").site("aws-fra")  # credentials.profile: guestbook
ENV_SITE = SITE.model_copy(update={"credentials": SITE.credentials.model_copy(update={"profile": None})})
AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL_EC2",
)


@pytest.fixture(scope="module")
def moto_ec2() -> Iterator[tuple[str, dict[str, str]]]:
    """moto's server and the keys of an IAM user allowed ec2:Describe*: (url, {id, secret})."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="x",
        )
        user = f"probe-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="describe", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        # moto loads its EC2 backend on the first EC2 call (seconds on a loaded machine): do it
        # here, so the checks' 2 s timeout measures the check, not moto's start-up
        boto3.client(
            "ec2",
            endpoint_url=url,
            region_name="eu-central-1",
            aws_access_key_id="setup",
            aws_secret_access_key="x",
        ).describe_regions()
        yield url, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No ambient AWS configuration: empty credential files, no metadata service, no env keys."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def authenticating_moto(moto_ec2: tuple[str, dict[str, str]], aws_env: pytest.MonkeyPatch) -> dict[str, str]:
    """moto with key checks on (a wrong key is a real AuthFailure), AWS_ENDPOINT_URL pointing at it."""
    from moto import settings

    url, key = moto_ec2
    aws_env.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    aws_env.setenv("AWS_ENDPOINT_URL", url)
    return key


def test_valid_env_keys_are_accepted_by_ec2(
    authenticating_moto: dict[str, str], aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", authenticating_moto["id"])
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", authenticating_moto["secret"])
    ok, reason, kind = aws.control_plane_check(ENV_SITE, None, None, MOTO_BOUND)
    assert (ok, kind) == (True, None) and "eu-central-1" in reason


def test_the_site_profile_supplies_the_keys(
    authenticating_moto: dict[str, str], aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(
        f"[guestbook]\naws_access_key_id = {authenticating_moto['id']}\n"
        f"aws_secret_access_key = {authenticating_moto['secret']}\n"
    )
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAENVNOTUSED00000")  # an explicit profile wins over env keys
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert aws.control_plane_check(SITE, None, None, MOTO_BOUND)[::2] == (True, None)


def test_unknown_keys_are_forbidden(authenticating_moto: dict[str, str], aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAREVOKED000000000")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "revoked-secret-value")
    ok, reason, kind = aws.control_plane_check(ENV_SITE, None, None, MOTO_BOUND)
    assert (ok, kind) == (False, "forbidden") and "AuthFailure" in reason
    assert "revoked-secret-value" not in reason


def test_no_credentials_is_forbidden_without_a_call(aws_env: pytest.MonkeyPatch) -> None:
    with fake_api() as api:
        aws_env.setenv("AWS_ENDPOINT_URL", api.url)
        ok, reason, kind = aws.control_plane_check(SITE, None, None, 1.0)
        assert (ok, kind) == (False, "forbidden") and reason.startswith("no credentials: ")
        assert "guestbook" in reason and api.requests == []


def _ec2_error(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>0c8f8a3e-4f34-4d3f-9d0b-000000000000</RequestID></Response>"
    )


@pytest.fixture
def scripted_ec2(aws_env: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIASCRIPTED00000000")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "scripted-secret")
    with fake_api() as api:
        aws_env.setenv("AWS_ENDPOINT_URL_EC2", api.url)
        yield api


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (
            403,
            "Blocked",
            "This account is currently blocked and not recognized as a valid account. "
            "Please contact aws-verification@amazon.com if you have questions.",
            "suspended",
        ),
        (
            401,
            "OptInRequired",
            "You are not subscribed to this service. Please go to http://aws.amazon.com.",
            "forbidden",
        ),
        (403, "AccountSuspended", "Your account has been suspended.", "forbidden"),  # no EC2 code
        (403, "UnauthorizedOperation", "You are not authorized to perform this operation.", "forbidden"),
        (503, "RequestLimitExceeded", "Request limit exceeded.", "transient"),
        (500, "InternalError", "An internal error has occurred.", "transient"),
    ],
)
def test_ec2_error_answers_are_classified_by_the_aws_table(
    scripted_ec2: FakeApi, status: int, code: str, message: str, expected: str
) -> None:
    scripted_ec2.answer(status, _ec2_error(code, message), content_type="text/xml")
    ok, reason, kind = aws.control_plane_check(ENV_SITE, None, None, MOTO_BOUND)
    assert (ok, kind) == (False, expected) and code in reason and str(status) in reason
    [request] = scripted_ec2.requests  # one attempt: botocore's retries are off
    assert request.method == "POST" and b"Action=DescribeRegions" in request.body
    assert "scripted-secret" not in reason


def test_an_ec2_that_never_answers_fails_transient_within_the_timeout(scripted_ec2: FakeApi) -> None:
    scripted_ec2.hang()
    assert ENV_SITE.region
    aws._ec2_client(None, ENV_SITE.region, 0.3)  # building a client loads botocore's model: not timed here
    started = time.monotonic()
    ok, reason, kind = aws.control_plane_check(ENV_SITE, None, None, 0.3)
    assert (ok, kind) == (False, "transient") and "did not answer" in reason
    assert time.monotonic() - started < 2.0
    assert len(scripted_ec2.requests) == 1


def test_rotated_profile_keys_are_picked_up(
    authenticating_moto: dict[str, str], aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[guestbook]\naws_access_key_id = AKIAOLDKEY0000000000\naws_secret_access_key = old\n"
    )
    assert aws.control_plane_check(SITE, None, None, MOTO_BOUND)[::2] == (False, "forbidden")
    credentials.write_text(
        f"[guestbook]\naws_access_key_id = {authenticating_moto['id']}\n"
        f"aws_secret_access_key = {authenticating_moto['secret']}\n"
    )
    stat = credentials.stat()
    os.utime(
        credentials, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000)
    )  # a rewrite in the same tick
    assert aws.control_plane_check(SITE, None, None, MOTO_BOUND)[::2] == (True, None)
