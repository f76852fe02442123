"""Config changes reach a running cloud site over a real sshd: only what changed is written, only
the services whose files changed restart, secrets never leave in argv, output, events or logs.

The site's folders are a temp ``Layout``; systemctl and docker are FAKES (tests/support/
fake_vm_tools.py: systemd and Docker on a cloud VM cannot run here); the diffing, the writing, the
file modes and what crosses the SSH connection are real.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deplat.events import EventKind, Recorder
from deplat.remote import app_key, open_site
from deplat.remote.config import Pushed, push, push_sites
from deplat.secrets import SecretStore
from deplat.site_results import SiteResult
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec
from deplat.transport.keys import AppKey
from tests.remote.conftest import PASSPHRASE, endpoint
from tests.support.fake_vm_tools import FakeVm, fake_vm
from tests.support.sshd import SshServer

pytestmark = pytest.mark.slow

DB_PASSWORD = "Db-Pa55word-Never-Shown"

SPEC = """\
app: shop
services:
  web:
    image: ghcr.io/example/web:1
    ports: [{port: 8080, public: true}]
    env: {MODE: prod}
    secrets: [SHOP_DB_PASSWORD]
    volumes: [{name: data, path: /data, size: 10}]
  worker:
    image: ghcr.io/example/worker:1
    env: {QUEUE: default}
domain: {zone: shop.example.org, names: [shop.example.org]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1, options: {ssh_cidrs: [127.0.0.1/32]}}
  - {name: gcp-b, provider: gcp, role: warm, region: europe-west3,
     options: {project: shop-1, ssh_cidrs: [127.0.0.1/32]}}
  - {name: hz-c, provider: hcloud, role: cold, region: nbg1}
"""


def write_spec(folder: Path, text: str = SPEC) -> Spec:
    path = folder / "deplat.yaml"
    path.write_text(text)
    return load_spec(path)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    return folder


@pytest.fixture
def spec(app_dir: Path) -> Spec:
    return write_spec(app_dir)


def store(spec: Spec, password: str = DB_PASSWORD) -> SecretStore:
    return SecretStore(spec, environ={"DEPLAT_PASSPHRASE": PASSPHRASE, "SHOP_DB_PASSWORD": password})


@pytest.fixture
def vm(tmp_path: Path) -> FakeVm:
    return fake_vm(tmp_path / "vm")


@pytest.fixture
def server(spec: Spec, server_for: Callable[[str], SshServer]) -> SshServer:
    return server_for(app_key(spec, store(spec)).public_line)


def push_to(
    spec: Spec, server: SshServer, vm: FakeVm, password: str = DB_PASSWORD
) -> tuple[Pushed, Recorder]:
    secrets = store(spec, password)
    events = Recorder()
    with open_site(spec, spec.site("aws-a"), secrets, endpoint=endpoint(server), layout=vm.layout) as remote:
        return push(spec, spec.site("aws-a"), secrets, remote, events), events


def test_a_first_push_writes_every_file_enables_and_starts_the_services(
    spec: Spec, server: SshServer, vm: FakeVm
) -> None:
    pushed, _ = push_to(spec, server, vm)
    assert "/etc/deplat/web.env" in pushed.written and "/etc/caddy/Caddyfile" in pushed.written
    assert "/etc/systemd/system/deplat-data.service" not in pushed.written  # first boot only
    env = vm.path("/etc/deplat/web.env")
    assert env.stat().st_mode & 0o777 == 0o600
    assert f"SHOP_DB_PASSWORD={DB_PASSWORD}" in env.read_text()
    assert vm.path("/etc/systemd/system/deplat-web.service").stat().st_mode & 0o777 == 0o644
    assert pushed.enabled == ["web", "worker"] and pushed.restarted == ["web", "worker"]
    assert pushed.reloaded == ["caddy"]
    assert vm.calls("systemctl")[-2:] == [
        ["systemctl", "restart", "deplat-web.service", "deplat-worker.service"],
        ["systemctl", "reload-or-restart", "caddy.service"],
    ]


def test_an_unchanged_spec_writes_and_restarts_nothing(spec: Spec, server: SshServer, vm: FakeVm) -> None:
    push_to(spec, server, vm)
    vm.clear()
    pushed, _ = push_to(spec, server, vm)
    assert pushed.written == [] and pushed.restarted == [] and pushed.reloaded == []
    assert vm.calls() == []
    assert pushed.summary() == "config: unchanged, nothing restarted"


def test_a_changed_env_value_reaches_the_site_and_restarts_only_that_service(
    spec: Spec, app_dir: Path, server: SshServer, vm: FakeVm
) -> None:
    push_to(spec, server, vm)
    vm.clear()
    changed = write_spec(app_dir, SPEC.replace("MODE: prod", "MODE: canary"))
    pushed, events = push_to(changed, server, vm)
    assert pushed.written == ["/etc/deplat/web.env"]
    assert "MODE=canary" in vm.path("/etc/deplat/web.env").read_text()
    assert pushed.restarted == ["web"] and pushed.pulled == []
    assert vm.calls() == [["systemctl", "restart", "deplat-web.service"]]  # no daemon-reload, no pull
    assert any("restarting web" in e.message for e in events.events)


def test_a_new_image_tag_is_pulled_then_only_its_service_restarts(
    spec: Spec, app_dir: Path, server: SshServer, vm: FakeVm
) -> None:
    push_to(spec, server, vm)
    vm.clear()
    changed = write_spec(app_dir, SPEC.replace("worker:1", "worker:2"))
    pushed, _ = push_to(changed, server, vm)
    assert pushed.written == ["/etc/systemd/system/deplat-worker.service"]
    assert vm.calls() == [
        ["systemctl", "daemon-reload"],
        ["docker", "pull", "ghcr.io/example/worker:2"],
        ["systemctl", "restart", "deplat-worker.service"],
    ]


def test_a_file_with_the_wrong_mode_is_written_again(spec: Spec, server: SshServer, vm: FakeVm) -> None:
    push_to(spec, server, vm)
    vm.path("/etc/deplat/web.env").chmod(0o644)
    pushed, _ = push_to(spec, server, vm)
    assert pushed.written == ["/etc/deplat/web.env"]
    assert vm.path("/etc/deplat/web.env").stat().st_mode & 0o777 == 0o600


def test_a_rotated_secret_reaches_the_site_and_never_shows_in_argv_output_events_or_logs(
    spec: Spec, server: SshServer, vm: FakeVm
) -> None:
    push_to(spec, server, vm)
    rotated = "Rotated-Secret-Value-77"
    pushed, events = push_to(spec, server, vm, password=rotated)
    assert pushed.written == ["/etc/deplat/web.env"] and pushed.restarted == ["web"]
    assert f"SHOP_DB_PASSWORD={rotated}" in vm.path("/etc/deplat/web.env").read_text()
    seen = json.dumps([e.to_dict() for e in events.events]) + json.dumps(pushed.to_dict())
    seen += vm.log.read_text() + (server.dir / "sshd.log").read_text()
    for value in (DB_PASSWORD, rotated):
        assert value not in seen


def test_a_pull_that_fails_stops_the_push_before_any_restart(
    spec: Spec, app_dir: Path, server: SshServer, vm: FakeVm
) -> None:
    push_to(spec, server, vm)
    vm.clear()
    changed = write_spec(app_dir, SPEC.replace("ghcr.io/example/web:1", "ghcr.io/example/missing:9"))
    secrets = store(changed)
    results = [SiteResult("aws-a", "up", ok=True, outputs={"ipv4": server.host, "ssh_port": server.port})]
    pushed = push_sites(changed, results, secrets, layout=vm.layout)["aws-a"]
    assert not pushed.ok and "manifest for ghcr.io/example/missing:9 not found" in (pushed.error or "")
    assert not results[0].ok and results[0].config["error"] == pushed.error
    assert [c[1] for c in vm.calls("systemctl")] == ["daemon-reload"]  # nothing restarted


def test_an_unreachable_site_fails_alone_and_the_others_get_their_config(
    spec: Spec, server: SshServer, vm: FakeVm
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    secrets = store(spec)
    results = [
        SiteResult("aws-a", "up", ok=True, outputs={"ipv4": server.host, "ssh_port": server.port}),
        SiteResult("gcp-b", "up", ok=True, outputs={"ipv4": "127.0.0.1", "ssh_port": closed}),
    ]
    events = Recorder()
    pushed = push_sites(spec, results, secrets, events, layout=vm.layout, connect_timeout=3)
    assert pushed["aws-a"].ok and results[0].ok and "web" in pushed["aws-a"].restarted
    assert not pushed["gcp-b"].ok and not results[1].ok
    assert "cannot reach" in (results[1].error or "") and results[1].error_class == "transient"
    assert [e.site for e in events.of(EventKind.CONFIG_PUSH)] == ["aws-a", "gcp-b"]


def test_a_site_that_refuses_the_apps_key_is_reported_clearly(
    spec: Spec, other_key: AppKey, server_for: Callable[[str], SshServer], vm: FakeVm
) -> None:
    stranger = server_for(other_key.public_line)
    results = [SiteResult("aws-a", "up", ok=True, outputs={"ipv4": stranger.host, "ssh_port": stranger.port})]
    pushed = push_sites(spec, results, store(spec), layout=vm.layout)["aws-a"]
    assert not pushed.ok and "refused the app's SSH key" in (pushed.error or "")
    assert "authorized_keys" in (pushed.error or "") and pushed.error_class == "forbidden"


def test_up_pushes_after_pulumi_but_not_to_a_vm_it_just_created(
    spec: Spec, server: SshServer, vm: FakeVm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``operations.operate``: a FAKE cloud driver stands in for Pulumi (the cloud API is
    the boundary); the push after it is the real one, over the real sshd."""
    from deplat import operations
    from deplat.events import Event
    from deplat.remote import config

    outputs = {"ipv4": server.host, "ssh_port": server.port}

    class FakeCloudDriver:  # FAKE: Pulumi and a cloud account
        def up(self, site: Any, emit: Any, **_: Any) -> SiteResult:
            if site.name == "gcp-b":  # a new VM: its first boot writes the config
                data = {"op": "create", "type": "gcp:compute/instance:Instance"}
                emit(Event(EventKind.SITE_OP, "create vm", site=site.name, data=data))
            return SiteResult(site.name, "up", ok=True, outputs=outputs)

    monkeypatch.setattr(operations, "driver_for", lambda *a: FakeCloudDriver())
    monkeypatch.setattr(operations, "preflight", lambda *a: None)
    monkeypatch.setattr(config, "push_sites", functools.partial(config.push_sites, layout=vm.layout))
    results = operations.up_sites(spec, None, store(spec), parallel=False)
    by_site = {r.site: r for r in results}
    assert by_site["aws-a"].ok and by_site["aws-a"].config["restarted"] == ["web", "worker"]
    assert by_site["gcp-b"].config["skipped"].startswith("a new VM")


def test_a_site_whose_ssh_port_is_closed_to_everyone_is_skipped_with_the_fix(spec: Spec, vm: FakeVm) -> None:
    results = [SiteResult("hz-c", "up", ok=True, outputs={"ipv4": "203.0.113.9"})]
    pushed = push_sites(spec, results, store(spec), layout=vm.layout)["hz-c"]
    assert pushed.ok and results[0].ok and "options.ssh_cidrs" in (pushed.skipped or "")
    assert vm.calls() == []
