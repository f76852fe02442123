"""A real sshd on loopback with the app's public key authorized, and the app's key pair."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.transport.keys import AppKey, KnownHosts, generate
from tests.support.sshd import SSHD, SshServer, sshd

if not SSHD.exists():  # pragma: no cover - CI installs it (.ci/run)
    pytest.skip("sshd is not installed (apt-get install openssh-server)", allow_module_level=True)
if os.getuid() != 0:  # pragma: no cover
    pytest.skip("sshd on loopback needs root here (privilege separation)", allow_module_level=True)


@pytest.fixture(scope="session")
def app_key() -> AppKey:
    return generate("shop")


@pytest.fixture
def server(tmp_path: Path, app_key: AppKey) -> Iterator[SshServer]:
    with sshd(tmp_path / "sshd", [app_key.public_line]) as srv:
        yield srv


@pytest.fixture
def known_hosts(tmp_path: Path) -> KnownHosts:
    return KnownHosts(tmp_path / "deplat" / "ssh" / "known_hosts")
