"""Config changes reach a running cloud site over a real sshd: only what changed is written, only
the services whose files changed restart, secrets never leave in argv, output, events or logs;
services removed from the spec are stopped and their files removed, their data kept.

The site's folders are a temp ``Layout``; systemctl and docker are FAKES (tests/support/
fake_vm_tools.py: systemd and Docker on a cloud VM cannot run here; the FAKE systemctl runs each
service as a real process); the diffing, the writing, the file modes and what crosses the SSH
connection are real.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
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
from tests.support.fake_systemctl import _alive
from tests.support.fake_vm_tools import FakeVm, fake_vm
from tests.support.sshd import SshServer, sshd

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


OLD_API_TOKEN = "Old-Api-Token-Never-Shown"
BACKUPS = """\
backups:
  password: SHOP_BACKUP_PASSWORD
  repositories:
    - {name: s3-eu, type: s3, bucket: shop-backups, region: eu-central-1,
       access_key: SHOP_S3_KEY, secret_key: SHOP_S3_SECRET}
    - {name: hetzner-os, type: hcloud, bucket: shop-backups, region: fsn1,
       access_key: SHOP_S3_KEY, secret_key: SHOP_S3_SECRET}
    - {name: gcs-eu, type: gcs, bucket: shop-backups-gcs, access_key: SHOP_S3_KEY, secret_key: SHOP_S3_SECRET}
"""
# old-api comes first: the front (Caddy proxies the domain to it), stateful, backed up on the primary
OLD_API = """\
  old-api:
    image: ghcr.io/example/old-api:3
    ports: [{port: 9090, public: true}]
    secrets: [OLD_API_TOKEN]
    volumes: [{name: data, path: /data, size: 5}]
    pre_backup: [sqlite3, /data/rows.db, .backup /data/copy.db]
"""
WITH_OLD_API = SPEC.replace("services:\n", "services:\n" + OLD_API) + BACKUPS
WITHOUT_OLD_API = SPEC + BACKUPS
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]  # what each FAKE unit runs


def secret_values(password: str = DB_PASSWORD) -> dict[str, str]:
    return {
        "DEPLAT_PASSPHRASE": PASSPHRASE,
        "SHOP_DB_PASSWORD": password,
        "OLD_API_TOKEN": OLD_API_TOKEN,
        "SHOP_BACKUP_PASSWORD": "backup-password-1",
        "SHOP_S3_KEY": "AKIAEXAMPLE",
        "SHOP_S3_SECRET": "s3-secret-1",
    }


def store(spec: Spec, password: str = DB_PASSWORD) -> SecretStore:
    return SecretStore(spec, environ=secret_values(password))


def vm_at(root: Path) -> FakeVm:
    """A FAKE VM whose units (the spec's services, old-api and Caddy) run as real processes."""
    units = ["deplat-web.service", "deplat-worker.service", "deplat-old-api.service", "caddy.service"]
    return fake_vm(root, units={unit: SLEEPER for unit in units})


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[FakeVm]:
    machine = vm_at(tmp_path / "vm")
    try:
        yield machine
    finally:
        machine.stop_all()


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


def test_a_service_removed_from_the_spec_is_stopped_and_its_files_removed_but_its_data_kept(
    app_dir: Path, server: SshServer, vm: FakeVm
) -> None:
    push_to(write_spec(app_dir, WITH_OLD_API), server, vm)
    assert vm.systemctl("enable", "--now", "deplat-backup@old-api.timer", "deplat-backup@web.timer") == 0
    old_pid, others = (
        vm.pid("deplat-old-api.service"),
        {u: vm.pid(u) for u in ("deplat-web.service", "deplat-worker.service")},
    )
    assert old_pid and all(others.values())
    data = vm.path("/srv/deplat/old-api/data")
    data.mkdir(parents=True)
    (data / "rows.db").write_bytes(b"the rows old-api wrote")
    assert vm.path("/etc/deplat/restic/pre-old-api").exists()
    vm.clear()

    pushed, events = push_to(write_spec(app_dir, WITHOUT_OLD_API), server, vm)

    assert pushed.ok and [r.service for r in pushed.removed] == ["old-api"]
    assert vm.pid("deplat-old-api.service") is None and not _alive(old_pid)  # its process is gone
    for path in (
        "/etc/systemd/system/deplat-old-api.service",
        "/etc/deplat/old-api.env",
        "/etc/deplat/restic/pre-old-api",
    ):
        assert not vm.path(path).exists(), path
    assert (data / "rows.db").read_bytes() == b"the rows old-api wrote"  # its data is untouched
    assert "deplat-backup@old-api.timer" not in vm.flagged("enabled") + vm.flagged("active")
    assert "deplat-backup@web.timer" in vm.flagged("enabled") and "deplat-backup@web.timer" in vm.flagged(
        "active"
    )
    # the others are not restarted; Caddy is (its front moved from old-api to web); one daemon-reload
    assert {u: vm.pid(u) for u in others} == others and pushed.restarted == []
    assert (
        pushed.written == ["/etc/caddy/Caddyfile"]
        and "9090" not in vm.path("/etc/caddy/Caddyfile").read_text()
    )
    assert vm.calls("systemctl") == [
        ["systemctl", "reload-or-restart", "caddy.service"],
        ["systemctl", "unmask", "deplat-backup@old-api.timer"],
        ["systemctl", "disable", "--now", "deplat-backup@old-api.timer"],
        ["systemctl", "disable", "--now", "deplat-old-api.service"],
        ["systemctl", "daemon-reload"],
    ]
    message = "removed service old-api (stopped; its data kept at /srv/deplat/old-api)"
    assert pushed.summary() == f"config: 1 file written; reloaded caddy; {message}"
    as_json = json.loads(json.dumps(pushed.to_dict()))  # what `deplat up --json` carries under config
    assert as_json["removed"] == [
        {
            "service": "old-api",
            "data": "/srv/deplat/old-api",
            "timer": "deplat-backup@old-api.timer",
            "files": [
                "/etc/deplat/old-api.env",
                "/etc/deplat/restic/pre-old-api",
                "/etc/systemd/system/deplat-old-api.service",
            ],
            "message": message,
        }
    ]
    removals = [e for e in events.of(EventKind.SITE_OP) if e.data.get("op") == "remove"]
    assert [(e.site, e.data["service"], e.message) for e in removals] == [
        ("aws-a", "old-api", f"config: {message}")
    ]
    assert OLD_API_TOKEN not in json.dumps([e.to_dict() for e in events.events]) + vm.log.read_text()

    vm.clear()  # a second up with the same spec does nothing
    again, _ = push_to(write_spec(app_dir, WITHOUT_OLD_API), server, vm)
    assert again.ok and again.removed == [] and vm.calls() == []
    assert again.summary() == "config: unchanged, nothing restarted"


def test_a_removed_service_that_cannot_be_stopped_fails_its_site_only(
    app_dir: Path, tmp_path: Path, server: SshServer, vm: FakeVm
) -> None:
    with_old = write_spec(app_dir, WITH_OLD_API)
    other = vm_at(tmp_path / "vm-b")
    try:
        with sshd(tmp_path / "sshd-b", [app_key(with_old, store(with_old)).public_line]) as server_b:
            results = [
                SiteResult("aws-a", "up", ok=True, outputs={"ipv4": server.host, "ssh_port": server.port}),
                SiteResult(
                    "gcp-b", "up", ok=True, outputs={"ipv4": server_b.host, "ssh_port": server_b.port}
                ),
            ]
            layouts = {"aws-a": vm.layout, "gcp-b": other.layout}
            first = push_sites(with_old, results, store(with_old), layout=layouts)
            assert all(p.ok for p in first.values())
            stuck = vm.pid("deplat-old-api.service")
            web = vm.pid("deplat-web.service")
            vm.define(
                "deplat-old-api.service", SLEEPER, stop_fails="Job for deplat-old-api.service canceled."
            )
            for r in results:
                r.config = {}

            without = write_spec(app_dir, WITHOUT_OLD_API)
            events = Recorder()
            pushed = push_sites(without, results, store(without), events, layout=layouts)
    finally:
        other.stop_all()

    failed, fine = pushed["aws-a"], pushed["gcp-b"]
    assert not failed.ok and not results[0].ok and results[0].error == failed.error
    assert "could not remove service old-api" in (failed.error or "")
    assert "Job for deplat-old-api.service canceled." in (failed.error or "")
    assert [n.service for n in failed.not_removed] == ["old-api"] and failed.removed == []
    assert vm.pid("deplat-old-api.service") == stuck  # still running: its files are kept for the next up
    assert vm.path("/etc/systemd/system/deplat-old-api.service").exists()
    assert vm.path("/etc/deplat/old-api.env").exists()
    assert vm.pid("deplat-web.service") == web
    # the other site is not touched by that failure: its old-api is gone, its data kept
    assert fine.ok and results[1].ok and [r.service for r in fine.removed] == ["old-api"]
    assert other.pid("deplat-old-api.service") is None
    assert not other.path("/etc/systemd/system/deplat-old-api.service").exists()
    assert [e.site for e in events.of(EventKind.CONFIG_PUSH)] == ["aws-a", "gcp-b"]


def test_deplat_up_says_which_services_it_removed_and_where_their_data_is_kept(
    app_dir: Path,
    server: SshServer,
    vm: FakeVm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``deplat up`` through the CLI: a FAKE cloud driver and preview stand in for Pulumi (the cloud
    API is the boundary); the push and the removal after it are the real ones, over the real sshd."""
    from deplat import operations, preflight
    from deplat.remote import config
    from tests.support.cli import cli

    outputs = {"ipv4": server.host, "ssh_port": server.port}

    class FakeCloudDriver:  # FAKE: Pulumi and a cloud account
        def up(self, site: Any, emit: Any, **_: Any) -> SiteResult:
            return SiteResult(site.name, "up", ok=True, outputs=outputs)

    monkeypatch.setattr(operations, "driver_for", lambda *a: FakeCloudDriver())
    monkeypatch.setattr(operations, "preflight", lambda *a: None)
    monkeypatch.setattr(operations, "preview_sites", lambda *a, **k: [])
    monkeypatch.setattr(preflight, "require", lambda *a, **k: None)
    monkeypatch.setattr(config, "push_sites", functools.partial(config.push_sites, layout=vm.layout))
    for name, value in secret_values().items():
        monkeypatch.setenv(name, value)
    spec_file = str(app_dir / "deplat.yaml")
    write_spec(app_dir, WITH_OLD_API)
    assert cli("-f", spec_file, "up", "--site", "aws-a", "--yes") == 0
    vm.path("/srv/deplat/old-api/data").mkdir(parents=True)  # as its unit's ExecStartPre makes it
    write_spec(app_dir, WITHOUT_OLD_API)
    capsys.readouterr()

    assert cli("-f", spec_file, "up", "--site", "aws-a", "--yes") == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "aws-a: config: 1 file written; reloaded caddy; removed service old-api (stopped; its data kept at /srv/deplat/old-api)"
        in said
    )
    assert vm.pid("deplat-old-api.service") is None

    write_spec(app_dir, WITH_OLD_API)  # back, then removed again: --json carries it
    assert cli("-f", spec_file, "up", "--site", "aws-a", "--yes") == 0
    write_spec(app_dir, WITHOUT_OLD_API)
    capsys.readouterr()
    assert cli("--json", "-f", spec_file, "up", "--site", "aws-a", "--yes") == 0
    (site,) = json.loads(capsys.readouterr().out)["sites"]
    assert [r["message"] for r in site["config"]["removed"]] == [
        "removed service old-api (stopped; its data kept at /srv/deplat/old-api)"
    ]
