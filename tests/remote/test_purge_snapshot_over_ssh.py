"""``deplat destroy --purge-data`` on a CLOUD site: a final snapshot of its data is taken ON its VM
over SSH before anything is deleted, and a site that cannot be reached is not purged.

Real: sshd (the "VM", on its own loopback address), restic on it, moto's S3 server for the two
repositories. FAKE: ``systemctl`` on the VM and the Pulumi side of the driver (its stack outputs
come from the test; its ``destroy`` only records that it was asked, with ``purge``; the engine's
preflight, which looks for the ``pulumi`` CLI, is skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deplat import operations
from deplat.data import repositories
from deplat.data.restic import Restic
from deplat.events import discard
from deplat.remote import app_key
from deplat.secrets import SecretStore
from deplat.site_results import SiteResult
from deplat.spec.model import Site, Spec
from deplat.transport import DirectTransport
from tests.remote import test_data_over_ssh as over_ssh
from tests.support.cloud_vm import Vm, cloud_vm

pytestmark = pytest.mark.slow

# the data-over-SSH tests' fixtures: moto's S3, a spec of two cloud sites, its secrets, the cloud APIs
s3, spec, secrets, cloud_apis = over_ssh.s3, over_ssh.spec, over_ssh.secrets, over_ssh.cloud_apis
A = "127.0.0.67"  # the VM's address: not the other remote tests' own (they may run meanwhile)
SITE = "hetzner-a"


class PurgeDriver(over_ssh.OutputsDriver):
    """``OutputsDriver`` whose ``destroy`` is a FAKE (no Pulumi stack): it records its ``purge``."""

    destroyed: list[tuple[str, bool]] = []

    def destroy(self, site: Site, emit: Any = discard, purge: bool = False) -> SiteResult:
        self.destroyed.append((site.name, purge))
        return SiteResult(site.name, "destroy", True, deleted=["data volume"] if purge else [])


@pytest.fixture
def drivers(spec: Spec, cloud_apis: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, Vm]:
    """Each site's VM by name (the test fills it in); ``driver_for`` gives a ``PurgeDriver`` on it."""
    import deplat.sites

    vms: dict[str, Vm] = {}
    PurgeDriver.destroyed = []
    monkeypatch.setattr(operations, "preflight", lambda *a: None)  # no engine runs here

    def driver_for(spec: Spec, site: Site, secrets: SecretStore) -> PurgeDriver:
        return PurgeDriver(spec, secrets, vms[site.name])

    monkeypatch.setattr(deplat.sites, "driver_for", driver_for)
    monkeypatch.setattr(operations, "driver_for", driver_for)
    return vms


def test_a_cloud_sites_data_is_snapshotted_on_its_vm_before_the_purge_deletes_it(
    spec: Spec, secrets: SecretStore, drivers: dict[str, Vm], tmp_path: Path
) -> None:
    with cloud_vm(tmp_path / "vm-a", A, app_key(spec, secrets).public_line, spec) as vm:
        drivers[SITE] = vm
        over_ssh.write_book(vm, "the last write before the purge")

        [result] = operations.operate("destroy", spec, [SITE], secrets, discard, purge_data=True)

    assert result.ok and PurgeDriver.destroyed == [(SITE, True)]
    [snapshot] = result.snapshots
    assert (snapshot["service"], snapshot["site"]) == ("web", SITE)
    states = repositories.survey(
        repositories.repositories(spec, secrets),
        repositories.password(spec, secrets),
        DirectTransport(tmp_path),
        app=spec.app,
    )
    assert [s.ok for s in states] == [True, True]  # in both repositories
    by_name = {state.repository: state for state in states}
    assert by_name[snapshot["location"]].newest["web"].id.startswith(snapshot["id"])
    for repo in repositories.repositories(spec, secrets):
        newest = by_name[repo.name].newest["web"]
        assert newest.site == SITE
        target = tmp_path / f"restored-{repo.name}"
        Restic(repo, repositories.password(spec, secrets), DirectTransport(tmp_path)).restore(
            newest.id, str(target)
        )
        book = target / "data" / "book.jsonl"  # the service's folder: its volume "data" in it
        assert book.read_text() == '{"entry": "the last write before the purge"}\n'


def test_a_cloud_site_that_cannot_be_reached_is_not_purged(
    spec: Spec, secrets: SecretStore, drivers: dict[str, Vm], tmp_path: Path
) -> None:
    with cloud_vm(tmp_path / "vm-a", A, app_key(spec, secrets).public_line, spec) as vm:
        drivers[SITE] = vm
        over_ssh.write_book(vm, "never snapshotted")
    # the VM is gone (its sshd stopped): nothing answers at its address

    [result] = operations.operate("destroy", spec, [SITE], secrets, discard, purge_data=True)

    assert not result.ok and PurgeDriver.destroyed == []  # nothing deleted
    assert result.error is not None
    assert "no final snapshot of its data, so nothing was purged" in result.error
    assert "--no-snapshot" in result.error
    assert all(value not in result.error for value in over_ssh.ENV.values())
