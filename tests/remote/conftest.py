"""A cloud-shaped spec whose site is reached over a real sshd on loopback (tests/support/sshd.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.remote import Endpoint
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec
from deplat.transport.keys import AppKey, generate
from tests.support.sshd import SSHD, SshServer, sshd

if not SSHD.exists():  # pragma: no cover - CI installs it (.ci/run)
    pytest.skip("sshd is not installed (apt-get install openssh-server)", allow_module_level=True)
if os.getuid() != 0:  # pragma: no cover
    pytest.skip("sshd on loopback needs root here (privilege separation)", allow_module_level=True)

PASSPHRASE = "state passphrase for remote tests"

SPEC = """\
app: shop
services:
  web:
    image: ghcr.io/example/web:1
    ports: [{port: 8080, public: true}]
    volumes: [{name: data, path: /data, size: 10}]
domain: {zone: shop.example.org, names: [shop.example.org]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1}
  - {name: gcp-b, provider: gcp, role: warm, region: europe-west3, options: {project: shop-1}}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir()
    path.write_text(SPEC)
    return load_spec(path)


@pytest.fixture
def secrets(spec: Spec) -> SecretStore:
    return SecretStore(spec, environ={"DEPLAT_PASSPHRASE": PASSPHRASE})


@pytest.fixture(scope="session")
def other_key() -> AppKey:
    return generate("someone-else")


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[object]:
    """``server_for(public_line)``: a real sshd authorizing that key, stopped at the test's end."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def start(public_line: str) -> SshServer:
            return stack.enter_context(sshd(tmp_path / "sshd", [public_line]))

        yield start


def endpoint(server: SshServer) -> Endpoint:
    return Endpoint(server.host, server.port, server.user)
