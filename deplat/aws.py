"""AWS APIs for deplat's own calls (not Pulumi's): boto3 clients with deplat's settings, botocore errors.

Used by the AWS hosting provider's control-plane check (EC2, ``deplat.providers.aws``) and the
Route 53 DNS backend (``deplat.dns.route53``). boto3 and botocore are imported only when a client
is made: importing this module costs nothing.

``client(service, Settings(...))`` gives a boto3 client for one service: the profile, a shared
credentials file, explicit keys, the region, an endpoint (else boto3's own ``AWS_ENDPOINT_URL_<SERVICE>``
/ ``AWS_ENDPOINT_URL``), ``timeout`` seconds to connect and to read, and one attempt (botocore's
retries are off: the caller, a failover or the watcher, decides whether to try again). Building a
client costs ~100-150 ms (botocore loads the service model), so one is kept and reused while
nothing it depends on changed: the settings, the ``AWS_*`` environment and the credentials and
config files (their modification times), so rotated keys are picked up.

``find_credentials(profile)`` says whether the standard AWS chain has credentials without a network
call; ``answer_of(exc)`` reads a botocore ``ClientError`` as (code, message, HTTP status).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from configparser import ConfigParser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CLIENTS: dict[str, Any] = {}  # sha256 of service, settings, AWS_* env and file times -> client
_CLIENTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """What a client is made with; ``None`` leaves a setting to the standard AWS sources."""

    region: str
    timeout: float
    profile: str | None = None
    credentials_file: str | None = None  # a shared credentials file instead of ~/.aws/credentials
    keys: tuple[str, str] | None = field(default=None, repr=False)  # (access key id, secret key)
    endpoint: str | None = None


def shared_files(environ: Mapping[str, str], home: Path) -> tuple[Path, Path]:
    """The shared credentials and config files, as the AWS SDKs find them."""
    creds = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    return creds, config


def profiles(creds: Path, config: Path) -> set[str]:
    """The profile names in the credentials file and the config file (``[profile NAME]`` there)."""
    names: set[str] = set()
    for path, prefix in ((creds, ""), (config, "profile ")):
        parser = ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except Exception:  # an unreadable file simply offers no profile
            continue
        for section in parser.sections():
            names.add(section[len(prefix) :] if section.startswith(prefix) else section)
    return names


def find_credentials(
    profile: str | None, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> tuple[bool, str]:
    """(found, where or why not) for ``profile`` or the standard chain (env keys, web identity, the
    ``AWS_PROFILE`` or default profile). Looks at env and the shared files only; no network call."""
    env = os.environ if environ is None else environ
    creds, config = shared_files(env, home or Path.home())
    if profile:
        if profile in profiles(creds, config):
            return True, f"AWS profile '{profile}' found in {creds} or {config}"
        return (
            False,
            f"AWS profile '{profile}' is not in {creds} or {config}: run `aws configure --profile {profile}`",
        )
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return True, "AWS web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) is set"
    wanted = env.get("AWS_PROFILE") or "default"
    if wanted in profiles(creds, config):
        return True, f"AWS profile '{wanted}' found"
    return False, (
        "no AWS credentials: set credentials.profile in the site, or AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY, or a profile in {creds}"
    )


def _fingerprint(service: str, settings: Settings) -> str:
    """What a client depends on, hashed (the key holds no secret)."""
    aws_env = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
    paths = [*shared_files(os.environ, Path.home())]
    if settings.credentials_file:
        paths.append(Path(settings.credentials_file))
    files = [(str(f), f.stat().st_mtime_ns if f.is_file() else None) for f in paths]
    fields = (service, settings, settings.keys, aws_env, files)
    return hashlib.sha256(repr(fields).encode()).hexdigest()


def client(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` (see the module's docstring), shared while nothing it depends
    on changed. Raises what botocore raises for bad settings (``ProfileNotFound`` ...)."""
    key = _fingerprint(service, settings)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _new_client(service, settings)
        return _CLIENTS[key]


def _new_client(service: str, settings: Settings) -> Any:
    import boto3
    import botocore.session
    from botocore.config import Config

    core = (
        botocore.session.Session(profile=settings.profile) if settings.profile else botocore.session.Session()
    )
    if settings.credentials_file:
        core.set_config_variable("credentials_file", settings.credentials_file)
    kwargs: dict[str, Any] = {"botocore_session": core}
    if settings.keys:
        kwargs.update(aws_access_key_id=settings.keys[0], aws_secret_access_key=settings.keys[1])
    config = Config(
        connect_timeout=settings.timeout, read_timeout=settings.timeout, retries={"total_max_attempts": 1}
    )
    return boto3.Session(**kwargs).client(
        service, region_name=settings.region, endpoint_url=settings.endpoint, config=config
    )


def answer_of(exc: Any) -> tuple[str, str, int | None]:
    """A botocore ``ClientError``'s error code, message and HTTP status (None when it has none)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (
        str(error.get("Code", "")),
        str(error.get("Message", "")),
        status if isinstance(status, int) else None,
    )
