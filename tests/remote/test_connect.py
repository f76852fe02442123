"""The one door to a cloud site's VM: the app's key (made once, kept encrypted), the site's
address from its outputs, the host key recorded on first contact, commands over a real sshd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deplat.errors import InputError, OperationFailed
from deplat.paths import paths
from deplat.remote import Endpoint, app_key, endpoint_of, open_site
from deplat.secrets import SecretStore
from deplat.spec.model import Spec
from deplat.transport import HostKeyMismatch, KeyRefused
from deplat.transport.keys import AppKey
from tests.remote.conftest import PASSPHRASE, endpoint
from tests.support.sshd import SshServer


def test_the_apps_key_is_made_once_encrypted_and_found_again(spec: Spec, secrets: SecretStore) -> None:
    first = app_key(spec, secrets)
    again = app_key(spec, secrets)
    assert first.public_line == again.public_line
    stored = paths(spec).ssh_private_key.read_bytes()
    assert b"ENCRYPTED" in stored and PASSPHRASE.encode() not in stored
    assert paths(spec).ssh_private_key.stat().st_mode & 0o077 == 0


def test_the_key_from_the_secret_wins_and_nothing_is_written(spec: Spec, other_key: AppKey) -> None:
    pem = other_key.private.export_private_key("openssh").decode()
    secrets = SecretStore(spec, environ={"DEPLAT_SSH_KEY": pem})
    assert app_key(spec, secrets).public_line.split()[1] == other_key.public_line.split()[1]
    assert not paths(spec).ssh_private_key.exists()


def test_the_endpoint_comes_from_the_sites_outputs(spec: Spec) -> None:
    site = spec.site("aws-a")
    assert endpoint_of(site, {"ipv4": ["203.0.113.7"]}) == Endpoint("203.0.113.7")
    pinned = endpoint_of(site, {"ipv4": "203.0.113.7", "ssh_port": 2222, "ssh_host_key": "ssh-ed25519 AAAA"})
    assert (pinned.port, pinned.host_key) == (2222, "ssh-ed25519 AAAA")
    with pytest.raises(OperationFailed, match="no address"):
        endpoint_of(site, {})


@pytest.mark.slow
def test_commands_run_on_the_site_and_its_host_key_is_kept(
    spec: Spec, secrets: SecretStore, server_for: Callable[[str], SshServer]
) -> None:
    server = server_for(app_key(spec, secrets).public_line)
    with open_site(spec, spec.site("aws-a"), secrets, endpoint=endpoint(server)) as remote:
        done = remote.transport.run(["sh", "-c", "echo on-the-site"], timeout=20)
    assert done.ok and done.stdout.strip() == "on-the-site"
    recorded = paths(spec).known_hosts.read_text()
    assert server.host_key_pub.split()[1] in recorded


@pytest.mark.slow
def test_a_site_that_does_not_list_the_apps_key_is_refused_clearly(
    spec: Spec, secrets: SecretStore, other_key: AppKey, server_for: Callable[[str], SshServer]
) -> None:
    server = server_for(other_key.public_line)
    with (
        open_site(spec, spec.site("aws-a"), secrets, endpoint=endpoint(server)) as remote,
        pytest.raises(KeyRefused) as refused,
    ):
        remote.transport.run(["true"], timeout=20)
    assert isinstance(refused.value, InputError) and "authorized_keys" in (refused.value.hint or "")


@pytest.mark.slow
def test_a_pinned_host_key_that_differs_is_refused(
    spec: Spec,
    secrets: SecretStore,
    other_key: AppKey,
    server_for: Callable[[str], SshServer],
    tmp_path: Path,
) -> None:
    server = server_for(app_key(spec, secrets).public_line)
    wrong = Endpoint(server.host, server.port, server.user, host_key=other_key.public_line)
    with (
        open_site(spec, spec.site("aws-a"), secrets, endpoint=wrong) as remote,
        pytest.raises(HostKeyMismatch),
    ):
        remote.transport.run(["true"], timeout=20)
