"""deplat's certificate on a cloud site: pebble issues it through BIND, it goes over a real sshd into
the VM's TLS folder, and a real Caddy with the rendered Caddyfile serves it for every app name,
verified by a TLS client that trusts only pebble's root. The failover's certificate step installs it
on a target that serves another one, and stops before any data or traffic moves when it cannot."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from deplat import certs
from deplat.certs.deploy import after_up, install_everywhere
from deplat.cli import run
from deplat.errors import OperationFailed
from deplat.events import Event, EventKind
from deplat.failover.journal import Journal
from deplat.failover.run import _run_steps, no_checkpoint
from deplat.failover.steps import STEPS, Certificate, Failover
from deplat.remote import Endpoint, Layout, RemoteSite, app_key, open_site
from deplat.secrets import SecretStore
from deplat.site_results import Addresses, SiteResult, SiteStatus
from deplat.spec import load_spec
from deplat.spec.model import Site, Spec
from deplat.transport.keys import generate
from tests.support.bind import Bind
from tests.support.caddy import Caddy, start_caddy
from tests.support.pebble import Pebble
from tests.support.sshd import SSHD, SshServer, sshd

pytestmark = pytest.mark.slow

if not SSHD.exists():  # pragma: no cover - CI installs it (.ci/run)
    pytest.skip("sshd is not installed (apt-get install openssh-server)", allow_module_level=True)
if os.getuid() != 0:  # pragma: no cover
    pytest.skip("sshd on loopback needs root here (privilege separation)", allow_module_level=True)

NAMES = ["guestbook.test", "www.guestbook.test"]
PASSPHRASE = "correct horse battery staple"


def make_spec(tmp_path: Path, ns: Bind, ca: Pebble) -> Spec:
    doc: dict[str, Any] = {
        "version": 1,
        "app": "guestbook",
        "services": {"web": {"image": "guestbook:1", "ports": [{"port": 18080, "public": True}]}},
        "domain": {"zone": "guestbook.test", "names": ["www.guestbook.test", "guestbook.test"]},
        "sites": [
            {"name": "aws-a", "provider": "aws", "role": "primary", "region": "eu-central-1"},
            {
                "name": "gcp-b",
                "provider": "gcp",
                "role": "warm",
                "region": "europe-west3",
                "options": {"project": "guestbook-1"},
            },
        ],
        "dns": [ns.dns_entry("ns-a")],
        "certificates": {
            "acme_directory": ca.directory,
            "ca_bundle": str(ca.ca_bundle),
            "propagation_seconds": 0,
        },
    }
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_spec(path)


def env_for(ns: Bind) -> dict[str, str]:
    return {**ns.secret_env(), "DEPLAT_PASSPHRASE": PASSPHRASE}


class FakeCloudDriver:
    """FAKE site driver (boundary: the cloud provider's API and the Pulumi stack's outputs). The
    site's VM is real: an sshd and a Caddy on loopback, its files under the test's ``Layout``."""

    def __init__(self, spec: Spec, secrets: SecretStore, vms: dict[str, tuple[SshServer, Caddy, Layout]]):
        self.spec, self.secrets, self.vms = spec, secrets, vms

    def status(self, site: Site) -> SiteStatus:
        vm = self.vms.get(site.name)
        if vm is None:
            return SiteStatus(site.name, "aws", "warm", False, False)
        server, web, _layout = vm
        outputs = {"ipv4": [server.host], "ssh_port": server.port, "https_port": web.https_port}
        return SiteStatus(site.name, "aws", "warm", True, True, outputs=outputs)

    def addresses(self, site: Site) -> Addresses:
        return Addresses(ipv4=list(self.status(site).outputs.get("ipv4", [])))

    def open_remote(self, site: Site) -> RemoteSite:
        server, _web, layout = self.vms[site.name]
        endpoint = Endpoint(server.host, server.port, server.user)
        return open_site(self.spec, site, self.secrets, endpoint=endpoint, layout=layout)


class Vm:
    """One cloud site's VM on loopback: a real sshd (authorizing ``authorized``) and a real Caddy."""

    def __init__(self, stack: ExitStack, folder: Path, spec: Spec, authorized: str) -> None:
        self.server = stack.enter_context(sshd(folder / "sshd", [authorized]))
        self.tls_dir = folder / "etc" / "deplat" / "tls"
        self.web = stack.enter_context(start_caddy(folder / "caddy", spec, self.tls_dir))
        self.layout = Layout(tls_dir=str(self.tls_dir), systemctl=(str(self.web.systemctl),))

    @property
    def entry(self) -> tuple[SshServer, Caddy, Layout]:
        return self.server, self.web, self.layout


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as held:
        yield held


def verified_leaf(port: int, name: str, root: Path) -> str:
    """A TLS client that trusts only ``root`` and checks the name: SHA-256 of the leaf it accepted."""
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=name) as tls,
    ):
        return hashlib.sha256(tls.getpeercert(binary_form=True) or b"").hexdigest()


def key_body(key_pem: str) -> str:
    return key_pem.strip().splitlines()[1]


def test_up_installs_the_certificate_and_caddy_serves_it_for_every_name_then_the_renewed_one(
    tmp_path: Path, bind_server: Bind, pebble: Pebble, stack: ExitStack
) -> None:
    spec = make_spec(tmp_path, bind_server, pebble)
    secrets = SecretStore(spec, environ=env_for(bind_server))
    first = certs.ensure(spec, secrets)
    assert first.info is not None
    vm = Vm(stack, tmp_path / "vm", spec, app_key(spec, secrets).public_line)
    factory = FakeCloudDriver(spec, secrets, {"aws-a": vm.entry})
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble.root_pem())
    # before deplat's first install Caddy serves its own local CA's certificate, not a public CA's
    with pytest.raises(ssl.SSLCertVerificationError):
        verified_leaf(vm.web.https_port, "guestbook.test", root)

    events: list[Event] = []
    up = [SiteResult("aws-a", "up", True)]
    placed = after_up(spec, up, secrets, events.append, drivers=lambda s: factory, first_boot=None)

    assert [p.site for p in placed] == ["aws-a"]
    assert placed[0].installed and placed[0].serving, placed[0]
    assert placed[0].names == {name: "ok" for name in NAMES}
    chain, key = certs.pem_pair(spec, secrets)  # type: ignore[misc]
    for name in NAMES:
        assert verified_leaf(vm.web.https_port, name, root) == placed[0].fingerprint
    assert vm.web.systemctl_calls() == ["reload-or-restart caddy.service"]
    # on the VM: the chain readable by all, the key 0600 and only the web server's user's
    key_file, chain_file = vm.tls_dir / "privkey.pem", vm.tls_dir / "fullchain.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.stat().st_uid == pwd.getpwnam("caddy").pw_uid
    assert stat.S_IMODE(chain_file.stat().st_mode) == 0o644
    assert stat.S_IMODE(vm.tls_dir.stat().st_mode) == 0o755
    assert chain_file.read_text() == chain
    assert (vm.tls_dir / "tls.caddy").read_text() == f"tls {chain_file} {key_file}\n"
    # the key is in no event and no result
    assert [e.kind for e in events] == [EventKind.CERT_INSTALL]
    shown = json.dumps([e.to_dict() for e in events]) + json.dumps([p.to_dict() for p in placed])
    assert "PRIVATE KEY" not in shown and key_body(key) not in shown

    later = first.info.not_after - timedelta(days=29)
    renewed = certs.ensure(spec, secrets, now=later)
    assert renewed.action == "renewed"
    again = install_everywhere(spec, secrets, drivers=lambda s: factory)

    by_site = {p.site: p for p in again}
    assert by_site["aws-a"].serving and by_site["aws-a"].fingerprint != placed[0].fingerprint
    assert by_site["gcp-b"].note == "not running: nothing to install on"
    for name in NAMES:  # Caddy read the files again although its configuration did not change
        assert verified_leaf(vm.web.https_port, name, root) == by_site["aws-a"].fingerprint


def test_certs_install_command_names_each_site_and_never_the_key(
    tmp_path: Path,
    bind_server: Bind,
    pebble: Pebble,
    stack: ExitStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = make_spec(tmp_path, bind_server, pebble)
    for name, value in env_for(bind_server).items():
        monkeypatch.setenv(name, value)
    secrets = SecretStore(spec, environ=env_for(bind_server))
    vm = Vm(stack, tmp_path / "vm", spec, app_key(spec, secrets).public_line)
    factory = FakeCloudDriver(spec, secrets, {"aws-a": vm.entry})
    monkeypatch.setattr("deplat.sites.driver_for", lambda spec, site, secrets: factory)
    path = str(spec.source)

    assert run(["-f", path, "--json", "certs", "--install"]) == 1  # nothing held yet
    capsys.readouterr()
    assert run(["-f", path, "--json", "certs"]) == 0  # obtains it and installs it on the running site
    document = json.loads(capsys.readouterr().out)
    assert document["action"] == "obtained"
    assert [(s["site"], s["serving"]) for s in document["sites"]] == [("aws-a", True), ("gcp-b", False)]

    assert run(["-f", path, "certs", "--install", "--site", "aws-a"]) == 0
    shown = capsys.readouterr()
    assert "aws-a" in shown.out and "yes" in shown.out and "gcp-b" not in shown.out
    assert vm.web.systemctl_calls() == ["reload-or-restart caddy.service"] * 2
    key = certs.pem_pair(spec, secrets)[1]  # type: ignore[index]
    for text in (shown.out, shown.err, json.dumps(document)):
        assert "PRIVATE KEY" not in text and key_body(key) not in text

    assert run(["-f", path, "certs", "--check", "--install"]) == 2


class UnusedTraffic:
    """Stands where the traffic switch goes: the test fails if any step reaches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the traffic switch was used ({name}) though the failover must stop before it")


def failover_to(spec: Spec, secrets: SecretStore, factory: FakeCloudDriver, *, force: bool) -> Failover:
    now = time.time()
    begin = {"from": "aws-a", "to": "gcp-b", "force": force, "reason": "test", "requested_at": now}
    journal = Journal.create(spec, {**begin, "reference_time": now}, secrets.masker)
    for step, result in (
        ("decide", {"from": "aws-a", "to": "gcp-b", "target_role": "warm", "target_health": "healthy"}),
        ("ensure_target", {"addresses": {"ipv4": ["127.0.0.1"], "ipv6": []}, "stood_up": False}),
    ):
        journal.start(step)
        journal.done(step, result)
    return Failover(spec, secrets, journal, lambda e: None, lambda s: factory, UnusedTraffic(), wait=5.0)  # type: ignore[arg-type]


def test_failover_installs_the_certificate_on_a_target_serving_another(
    tmp_path: Path, bind_server: Bind, pebble: Pebble, stack: ExitStack
) -> None:
    spec = make_spec(tmp_path, bind_server, pebble)
    secrets = SecretStore(spec, environ=env_for(bind_server))
    certs.ensure(spec, secrets)
    vm = Vm(stack, tmp_path / "vm", spec, app_key(spec, secrets).public_line)
    factory = FakeCloudDriver(spec, secrets, {"gcp-b": vm.entry})
    assert STEPS.index("certificate") < STEPS.index("final_backup") < STEPS.index("switch")

    result = Certificate().run(failover_to(spec, secrets, factory, force=False))

    assert result["installed"] and result["serving"], result
    assert result["names"] == {name: "ok" for name in NAMES}
    again = Certificate().run(failover_to(spec, secrets, factory, force=False))
    assert again["serving"] and not again["installed"] and again["note"] == "already served"
    assert vm.web.systemctl_calls() == ["reload-or-restart caddy.service"]  # no second install


def test_failover_stops_before_the_data_and_the_switch_when_the_install_fails(
    tmp_path: Path, bind_server: Bind, pebble: Pebble, stack: ExitStack
) -> None:
    spec = make_spec(tmp_path, bind_server, pebble)
    secrets = SecretStore(spec, environ=env_for(bind_server))
    certs.ensure(spec, secrets)
    # the target serves Caddy's local certificate, and its SSH server does not take the app's key
    vm = Vm(stack, tmp_path / "vm", spec, generate("someone-else").public_line)
    factory = FakeCloudDriver(spec, secrets, {"gcp-b": vm.entry})
    f = failover_to(spec, secrets, factory, force=False)

    with pytest.raises(OperationFailed) as stopped:
        _run_steps(f, no_checkpoint)

    message = stopped.value.message
    assert message.startswith(
        "target gcp-b does not serve a valid certificate for guestbook.test, www.guestbook.test"
    )
    assert "--force" in (stopped.value.hint or "")
    journal = Journal.load(f.journal.path)
    assert not journal.started("final_backup") and not journal.started("switch")
    assert not (vm.tls_dir / "privkey.pem").exists()

    forced = Certificate().run(failover_to(spec, secrets, factory, force=True))
    assert forced["forced"] and not forced["serving"] and forced["error"]
