"""``deplat rejoin`` with a CLOUD primary: a fresh backup is taken ON the primary's VM over SSH and
restored onto the rejoining site, so writes made after the last periodic backup are not lost. When
the primary cannot be reached over SSH the rejoin stops before the site is touched (exit 1, with the
hint), unless ``--accept-last-backup`` accepts the newest periodic snapshot (the result says so).

The setup of tests/remote/test_data_over_ssh.py: real sshd per "VM" on its own loopback address,
real restic, moto's S3 server for two repositories, the services as real HTTP servers over their
data volumes, the cloud APIs scripted. FAKES: ``systemctl`` on the VMs, and the Pulumi side of the
sites' driver (``RejoinDriver``: stack outputs from the test, ``up`` a no-op; no Pulumi stack exists).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from deplat.cli import run
from deplat.cli.render.failover import print_rejoin
from deplat.data.freshness import age_text
from deplat.failover import data
from deplat.failover.rejoin import RejoinResult
from deplat.remote import app_key
from deplat.secrets import SecretStore
from deplat.site_results import SiteResult
from deplat.spec.loader import load_spec
from deplat.spec.model import Site, Spec
from deplat.state import load_active, record_failover
from deplat.transport.keys import generate
from tests.remote import test_data_over_ssh as over_ssh
from tests.support.cloud_vm import Vm, cloud_vm
from tests.support.object_storage import S3Server

pytestmark = pytest.mark.slow

# the data-over-SSH tests' fixtures: moto's S3, a spec of two cloud sites, its secrets, the cloud APIs
s3, spec, secrets, cloud_apis = over_ssh.s3, over_ssh.spec, over_ssh.secrets, over_ssh.cloud_apis
write_book, served_book = over_ssh.write_book, over_ssh.served_book
A, B = "127.0.0.64", "127.0.0.65"  # the VMs' addresses: not the data tests' own (they may run meanwhile)

# the spec's primary hetzner-a was failed over to gcp-b: gcp-b is the (cloud) primary, hetzner-a fenced
PRIMARY, FENCED = "gcp-b", "hetzner-a"
PERIODIC, LATER, STALE = "in the periodic backup", "written after it", "the fenced site's own"
ENV = over_ssh.ENV  # the secrets, as the operator exports them


class RejoinDriver(over_ssh.OutputsDriver):
    """``OutputsDriver`` whose ``up`` is a FAKE no-op (the site's stack is up to date: no Pulumi)."""

    def up(self, site: Site, emit: object = None, *, replace_vm: bool = False) -> SiteResult:
        return SiteResult(site.name, "up", True, outputs=self.vm.outputs)


class Deplat:
    """``deplat ARGS`` in this process against the spec; ``vms``: each site's VM, for its driver."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.vms: dict[str, Vm] = {}

    def driver_for(self, spec: Spec, site: Site, secrets: SecretStore) -> RejoinDriver:
        return RejoinDriver(spec, secrets, self.vms[site.name])

    def __call__(self, *args: str) -> int:
        return run(["--no-color", "--file", str(self.spec.source), *args])


@pytest.fixture
def deplat(spec: Spec, cloud_apis: object, monkeypatch: pytest.MonkeyPatch) -> Deplat:
    import deplat.sites

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cli = Deplat(spec)
    monkeypatch.setattr(deplat.sites, "driver_for", cli.driver_for)
    record_failover(spec, FENCED, PRIMARY, "operator")
    return cli


def periodic_backup(spec: Spec, secrets: SecretStore, vm: Vm) -> dict[str, Any]:
    """What the primary's backup timer does: the next snapshot of its data in every repository."""
    [backup] = data.back_up(spec, PRIMARY, secrets=secrets, driver=over_ssh.OutputsDriver(spec, secrets, vm))
    return backup


def book(vm: Vm) -> list[str]:
    return [json.loads(line)["entry"] for line in served_book(vm).splitlines()]


def test_rejoin_restores_a_write_the_cloud_primary_took_after_its_last_periodic_backup(
    spec: Spec,
    secrets: SecretStore,
    deplat: Deplat,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = app_key(spec, secrets).public_line
    with cloud_vm(tmp_path / "vm-a", A, key, spec) as a, cloud_vm(tmp_path / "vm-b", B, key, spec) as b:
        deplat.vms.update({FENCED: a, PRIMARY: b})
        write_book(a, STALE)
        a.start("web")
        data.backup_timers(spec, FENCED, True, secrets=secrets, driver=RejoinDriver(spec, secrets, a))
        write_book(b, PERIODIC)
        b.start("web")
        periodic = periodic_backup(spec, secrets, b)
        write_book(b, LATER)

        assert deplat("--json", "rejoin", FENCED, "--yes") == 0
        doc = json.loads(capsys.readouterr().out)

        assert book(a) == [PERIODIC, LATER]  # the write after the periodic backup came along
        assert book(b) == [PERIODIC, LATER]  # the primary still serves: rejoin stopped nothing there
        assert "stop deplat-web.service" not in b.calls()
        source = doc["data_from"]
        assert source["kind"] == "fresh" and source["site"] == PRIMARY
        assert source["text"].startswith(f"fresh backup of {PRIMARY} at ")
        [fresh] = doc["backed_up"]
        [restored] = doc["restored"]
        assert fresh["site"] == PRIMARY and fresh["taken_at"] > periodic["taken_at"]
        assert restored["site"] == PRIMARY and restored["taken_at"] >= fresh["taken_at"]
        assert source["snapshots"] == {"web": restored["backup_id"]}
        assert doc["role"] == "warm" and doc["health"] == "healthy"
        assert a.timers_on() == []  # a standby never backs up
        active = load_active(spec)
        assert FENCED not in active.fenced and active.primary == PRIMARY
    out = json.dumps(doc)
    assert all(value not in out for value in ENV.values())  # no secret in the result
    console = Console(record=True, width=160)  # the table says it too
    print_rejoin(console, RejoinResult(**doc))
    table = console.export_text()
    assert f"{FENCED} rejoined as a warm standby" in table and source["text"] in table


def test_an_unreachable_cloud_primary_stops_the_rejoin_unless_its_last_backup_is_accepted(
    spec: Spec,
    secrets: SecretStore,
    deplat: Deplat,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = app_key(spec, secrets).public_line
    with cloud_vm(tmp_path / "vm-a", A, key, spec) as a:
        with cloud_vm(tmp_path / "vm-b", B, key, spec) as b:
            write_book(b, PERIODIC)
            periodic = periodic_backup(spec, secrets, b)
            write_book(b, LATER)
        # the primary's VM is gone (its sshd and services stopped): nothing answers at its address
        deplat.vms.update({FENCED: a, PRIMARY: b})
        write_book(a, STALE)
        a.start("web")

        assert deplat("rejoin", FENCED, "--yes") == 1
        err = capsys.readouterr().err
        assert f"no fresh backup of the primary {PRIMARY} could be taken: cannot reach" in err
        assert f"deplat rejoin {FENCED} --accept-last-backup" in err and "hint" in err
        assert book(a) == [STALE] and a.calls() == ["start deplat-web.service"]  # nothing touched
        assert FENCED in load_active(spec).fenced

        started = time.time()
        assert deplat("--json", "rejoin", FENCED, "--yes", "--accept-last-backup") == 0
        doc = json.loads(capsys.readouterr().out)

        assert book(a) == [PERIODIC]  # the periodic snapshot: the later write is not there
        source = doc["data_from"]
        [restored] = doc["restored"]
        assert source["kind"] == "periodic" and source["site"] == PRIMARY and doc["backed_up"] == []
        assert restored["taken_at"] >= periodic["taken_at"] and source["snapshots"] == {
            "web": restored["backup_id"]
        }
        age = source["age_seconds"]
        assert started - restored["taken_at"] < age < time.time() - restored["taken_at"]  # its age at the end
        assert re.fullmatch(
            rf"periodic snapshot of {PRIMARY}, {re.escape(age_text(age))} old \(web [0-9a-f]{{8}}\)",
            source["text"],
        )
        assert source["why"].startswith(f"cannot reach root@[{B}]")
        assert FENCED not in load_active(spec).fenced
    console = Console(record=True, width=200)
    print_rejoin(console, RejoinResult(**doc))
    table = console.export_text()
    assert (
        source["text"] in table
        and f"writes made on {PRIMARY} after that snapshot are not on {FENCED}" in table
    )


def test_rejoin_with_a_primary_refusing_the_apps_key_fails_with_exit_1_and_changes_nothing(
    spec: Spec,
    secrets: SecretStore,
    deplat: Deplat,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = app_key(spec, secrets).public_line
    with (
        cloud_vm(tmp_path / "vm-a", A, key, spec) as a,
        cloud_vm(tmp_path / "vm-b", B, generate("someone-else").public_line, spec) as b,
    ):
        deplat.vms.update({FENCED: a, PRIMARY: b})
        write_book(a, STALE)
        a.start("web")
        assert deplat("rejoin", FENCED, "--yes") == 1  # not 2: the input was fine, the primary refused
        err = capsys.readouterr().err
        assert "refused the app's SSH key" in err and "--accept-last-backup" in err
        assert book(a) == [STALE] and a.calls() == ["start deplat-web.service"]
        assert FENCED in load_active(spec).fenced


def test_rejoin_refuses_a_cloud_primary_with_ssh_closed_naming_the_fix_and_the_flag(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir()
    text = over_ssh.SPEC.format(port=over_ssh.PORT, endpoint=s3.endpoint, bucket="closed")
    path.write_text(text.replace("{project: shop-1, ssh_cidrs: [127.0.0.0/8]}", "{project: shop-1}"))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    closed = load_spec(path)
    record_failover(closed, FENCED, PRIMARY, "operator")

    assert run(["--no-color", "--file", str(path), "rejoin", FENCED, "--yes"]) == 1
    err = capsys.readouterr().err
    assert f"no fresh backup of the primary {PRIMARY} could be taken: its port 22 is closed" in err
    assert "add options.ssh_cidrs" in err and f"site {PRIMARY}" in err and "--accept-last-backup" in err
    assert FENCED in load_active(closed).fenced
