"""deplat.aws's own behaviour: clients shared while nothing they depend on changed (a rotated key in a
credentials file is picked up), explicit keys, and a botocore error read as code, message, status.
AWS is faked on loopback (tests.support.fake_api); boto3 and botocore are the real ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat import aws as aws_api
from tests.support.fake_api import FakeApi, fake_api

ZONES = (
    '<?xml version="1.0"?><ListHostedZonesResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    "<HostedZones/><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesResponse>"
)
REFUSED = (
    '<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    "<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error>"
    "<RequestId>r1</RequestId></ErrorResponse>"
)


@pytest.fixture
def route53(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApi]:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with fake_api() as api:
        api.answer(200, ZONES, path="/2013-04-01/hostedzone", content_type="text/xml")
        yield api


def _key_id_sent(api: FakeApi) -> str:
    """The access key id in the last request's SigV4 Authorization header."""
    authorization = api.requests[-1].headers["Authorization"]
    return authorization.split("Credential=")[1].split("/")[0]


def _write_keys(path: Path, key_id: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = s-{key_id}\n")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))  # a rewrite in the same tick


def test_a_client_is_shared_until_its_credentials_file_changes(route53: FakeApi, tmp_path: Path) -> None:
    keys = tmp_path / "dns-keys"
    _write_keys(keys, "AKIAOLDKEY0000000000")
    settings = aws_api.Settings(
        region="us-east-1", timeout=2.0, credentials_file=str(keys), endpoint=route53.url
    )

    first = aws_api.client("route53", settings)
    assert aws_api.client("route53", settings) is first
    first.list_hosted_zones()
    assert _key_id_sent(route53) == "AKIAOLDKEY0000000000"

    _write_keys(keys, "AKIANEWKEY0000000000")
    rotated = aws_api.client("route53", settings)
    rotated.list_hosted_zones()

    assert rotated is not first
    assert _key_id_sent(route53) == "AKIANEWKEY0000000000"


def test_explicit_keys_win_and_other_settings_get_their_own_client(route53: FakeApi) -> None:
    settings = aws_api.Settings(
        region="us-east-1", timeout=2.0, keys=("AKIAEXPLICIT00000000", "secret"), endpoint=route53.url
    )

    aws_api.client("route53", settings).list_hosted_zones()

    assert _key_id_sent(route53) == "AKIAEXPLICIT00000000"
    assert "secret" not in repr(settings)
    other = aws_api.Settings(**{**settings.__dict__, "timeout": 3.0})
    assert aws_api.client("route53", other) is not aws_api.client("route53", settings)


def test_a_refusal_is_read_as_code_message_and_status(route53: FakeApi) -> None:
    import botocore.exceptions

    route53.answer(403, REFUSED, path="/2013-04-01/hostedzone", content_type="text/xml")
    settings = aws_api.Settings(region="us-east-1", timeout=2.0, keys=("AKIAX", "s"), endpoint=route53.url)

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        aws_api.client("route53", settings).list_hosted_zones()

    assert aws_api.answer_of(refused.value) == ("AccessDenied", "not allowed", 403)
    unanswered = botocore.exceptions.ClientError({"Error": {"Code": "Blocked"}}, "DescribeRegions")
    assert aws_api.answer_of(unanswered) == ("Blocked", "", None)
