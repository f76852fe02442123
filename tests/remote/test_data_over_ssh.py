"""Data follows the app onto a WARM cloud site over SSH: restic runs on the site, the services are
stopped before and started after, a planned failover's final backup is taken on the old primary and
restored on the target, the backup timers follow the primary role.

Real: sshd (one per "VM", on the site's own loopback address), restic, moto's S3 server for two
repositories, the services (HTTP servers over their data volumes, health checks run on the VM), the
Hetzner control-plane check against a scripted API (the cloud's API: the one boundary faked).
FAKE: ``systemctl`` (tests/support/fake_systemctl.py: no systemd runs here) and the stack outputs
(``OutputsDriver``: no Pulumi stack exists; everything else is ``PulumiDriver``'s own code).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from deplat.data import repositories
from deplat.data.restic import Restic
from deplat.engine.driver import PulumiDriver
from deplat.failover import addresses as book
from deplat.failover import data
from deplat.failover.journal import Journal
from deplat.failover.steps import Decide, EnsureTarget, Failover, Fence, FinalBackup, Restore, Step
from deplat.failover.traffic import traffic_for
from deplat.remote import app_key
from deplat.secrets import SecretStore
from deplat.site_results import Addresses, SiteStatus
from deplat.spec.loader import load_spec
from deplat.spec.model import Site, Spec
from deplat.transport import DirectTransport, KeyRefused
from tests.remote.conftest import PASSPHRASE
from tests.support.cloud_vm import Vm, cloud_vm
from tests.support.fake_api import FakeApi, fake_api
from tests.support.object_storage import KEY_ID, SECRET, S3Server, moto_s3
from tests.support.trees import write_files

pytestmark = pytest.mark.slow

RESTIC_PASSWORD = "restic password for the remote data tests"
HCLOUD_TOKEN = "hc-token-for-remote-data-tests-0123"
GCP_TOKEN = "ya29.gcp-token-for-remote-data-tests"
PORT = 18471
A, B = "127.0.0.61", "127.0.0.62"

SPEC = """\
app: shop
services:
  web:
    image: ghcr.io/example/web:1
    ports: [{{port: {port}, public: true}}]
    volumes: [{{name: data, path: /data, size: 10}}]
    health: {{port: {port}, path: /book.jsonl, timeout: 2}}
domain: {{zone: shop.example.org, names: [shop.example.org]}}
backups:
  repositories:
    - {{name: wasabi, type: s3, endpoint: "{endpoint}", bucket: {bucket}-1, prefix: shop,
       access_key: S3_KEY, secret_key: S3_SECRET, operator: wasabi, deadline: 30}}
    - {{name: b2, type: s3, endpoint: "{endpoint}", bucket: {bucket}-2, prefix: shop,
       access_key: S3_KEY, secret_key: S3_SECRET, operator: backblaze, deadline: 30}}
sites:
  - {{name: hetzner-a, provider: hcloud, role: primary, region: fsn1, options: {{ssh_cidrs: [127.0.0.0/8]}}}}
  - {{name: gcp-b, provider: gcp, role: warm, region: europe-west3,
     options: {{project: shop-1, ssh_cidrs: [127.0.0.0/8]}}}}
"""


class OutputsDriver(PulumiDriver):
    """``PulumiDriver`` whose stack outputs come from the test (a FAKE state backend: no stack
    exists). Everything else, ``remote``/``stop``/``restart`` over SSH among it, is the real driver."""

    def __init__(self, spec: Spec, secrets: SecretStore, vm: Vm) -> None:
        super().__init__(spec, secrets, layout=vm.layout)
        self.vm = vm

    def status(self, site: Site) -> SiteStatus:
        return SiteStatus(
            site.name, site.provider.value, site.role.value, True, True, outputs=self.vm.outputs
        )


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def spec(tmp_path: Path, s3: S3Server) -> Spec:
    bucket = f"b{abs(hash(str(tmp_path))) % 10**8}"
    s3.bucket(f"{bucket}-1")
    s3.bucket(f"{bucket}-2")
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir()
    path.write_text(SPEC.format(port=PORT, endpoint=s3.endpoint, bucket=bucket))
    return load_spec(path)


ENV = {  # the secrets, as the operator exports them
    "DEPLAT_PASSPHRASE": PASSPHRASE,
    "DEPLAT_BACKUP_PASSWORD": RESTIC_PASSWORD,
    "S3_KEY": KEY_ID,
    "S3_SECRET": SECRET,
    "HCLOUD_TOKEN": HCLOUD_TOKEN,
    "GOOGLE_OAUTH_ACCESS_TOKEN": GCP_TOKEN,
}


@pytest.fixture
def secrets(spec: Spec) -> SecretStore:
    return SecretStore(spec, environ=ENV)


@pytest.fixture
def vms(spec: Spec, secrets: SecretStore, tmp_path: Path) -> Iterator[dict[str, Vm]]:
    line = app_key(spec, secrets).public_line
    with ExitStack() as stack:
        yield {
            "hetzner-a": stack.enter_context(cloud_vm(tmp_path / "vm-a", A, line, spec)),
            "gcp-b": stack.enter_context(cloud_vm(tmp_path / "vm-b", B, line, spec)),
        }


@pytest.fixture
def cloud_apis(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    """Hetzner's and Google's APIs, scripted: they accept the tokens (no provider is suspended)."""
    for name in ("GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    with fake_api() as api:
        api.answer(200, "{}")
        pages = '{"page": 1, "per_page": 1, "previous_page": null, "next_page": null, "last_page": 1}'
        api.answer(200, f'{{"servers": [], "meta": {{"pagination": {pages}}}}}', path="/v1/servers")
        monkeypatch.setenv("HCLOUD_ENDPOINT", f"{api.url}/v1")
        monkeypatch.setenv("GOOGLE_COMPUTE_CUSTOM_ENDPOINT", f"{api.url}/compute/v1/")
        yield api


def write_book(vm: Vm, *entries: str) -> None:
    vm.volume("web").mkdir(parents=True, exist_ok=True)
    with (vm.volume("web") / "book.jsonl").open("a") as f:
        for entry in entries:
            f.write(f'{{"entry": "{entry}"}}\n')


def served_book(vm: Vm) -> str:
    return httpx.get(f"http://{vm.address}:{PORT}/book.jsonl", trust_env=False, timeout=5).text


class ArgvWatcher:
    """Reads every process's argv (/proc/*/cmdline) while it runs; ``seen(text)``: was ``text``
    ever on a command line?"""

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with suppress(OSError):
                        self.lines.add(Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace"))
            time.sleep(0.005)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def seen(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_restore_onto_a_warm_cloud_site_replaces_its_stale_data_between_a_stop_and_a_start(
    spec: Spec, secrets: SecretStore, vms: dict[str, Vm]
) -> None:
    a, b = vms["hetzner-a"], vms["gcp-b"]
    write_book(a, "one", "two")
    a.start("web")
    write_book(b, "stale")
    b.start("web")
    assert "stale" in served_book(b)
    drivers = {name: OutputsDriver(spec, secrets, vm) for name, vm in vms.items()}

    with ArgvWatcher() as argv:
        [backup] = data.back_up(spec, "hetzner-a", secrets=secrets, driver=drivers["hetzner-a"])
        lost_at = time.time() + 5.0
        [item] = data.restore(
            spec,
            "gcp-b",
            reference_time=lost_at,
            secrets=secrets,
            driver=drivers["gcp-b"],
            timeout=20,
        )

    assert (item["service"], item["site"]) == ("web", "hetzner-a")
    assert item["taken_at"] >= backup["taken_at"]  # that backup (a snapshot in each repository)
    assert item["started"] is True and 5.0 <= item["rpo_seconds"] < 60
    assert (b.volume("web") / "book.jsonl").read_text() == '{"entry": "one"}\n{"entry": "two"}\n'
    assert "stale" not in served_book(b)  # the service was started again, on the restored data
    calls = b.calls()[1:]  # after the test's own start: stopped, checked, then started again
    assert calls[:3] == [
        "stop deplat-web.service",
        "is-active deplat-web.service",
        "start deplat-web.service",
    ]
    assert sorted(p.name for p in Path(b.layout.data_dir).iterdir()) == ["web"]  # no temp folder left
    for secret in (RESTIC_PASSWORD, SECRET):
        assert not argv.seen(secret)
        for vm in vms.values():
            assert secret not in (vm.root / "sshd" / "sshd.log").read_text()
    assert argv.seen("restic")  # the watcher did see restic's own command lines


def run_steps(f: Failover, steps: list[Step]) -> dict[str, dict[str, Any]]:
    """The steps in order, each journaled as ``deplat.failover.run`` does."""
    for step in steps:
        f.journal.start(step.name)
        result = step.run(f)
        f.journal.done(step.name, result)
        f.results[step.name] = result
    return f.results


def test_a_planned_failover_to_a_warm_cloud_site_loses_nothing_and_moves_the_backup_timers(
    spec: Spec, secrets: SecretStore, vms: dict[str, Vm], cloud_apis: FakeApi
) -> None:
    a, b = vms["hetzner-a"], vms["gcp-b"]
    write_book(a, "in the periodic backup")
    a.start("web")
    write_book(b, "the standby's stale data")
    b.start("web")
    drivers = {name: OutputsDriver(spec, secrets, vm) for name, vm in vms.items()}
    data.backup_timers(spec, "hetzner-a", True, secrets=secrets, driver=drivers["hetzner-a"])  # the primary's
    data.back_up(spec, "hetzner-a", secrets=secrets, driver=drivers["hetzner-a"])  # its last periodic backup
    write_book(a, "acknowledged after it", "acknowledged right before the failover")
    book.remember_addresses(spec, "hetzner-a", Addresses(ipv4=[A]))  # as `deplat up` learnt it
    now = time.time()
    begin = {
        "from": "hetzner-a",
        "to": "gcp-b",
        "reason": "operator",
        "requested_at": now,
        "reference_time": now,
    }
    f = Failover(
        spec=spec,
        secrets=secrets,
        journal=Journal.create(spec, begin, secrets.masker),
        emit=lambda event: None,
        drivers=lambda site: drivers[site.name],
        traffic=traffic_for(spec, secrets, timeout=2.0),
        wait=20.0,
    )

    results = run_steps(f, [Decide(), EnsureTarget(), FinalBackup(), Restore(), Fence()])

    final, restore, fence = results["final_backup"], results["restore"], results["fence"]
    assert final["planned"] is True, final
    assert final["stopped"] == ["web"]
    assert final["timers_off"] == ["deplat-backup@web.timer"]
    assert restore["rpo_seconds"] == 0.0 and restore["health"] == "healthy"
    [restored] = restore["restored"]
    assert restored["taken_at"] >= final["backups"][0]["taken_at"]  # the final backup, restored
    assert served_book(b).splitlines() == [
        '{"entry": "in the periodic backup"}',
        '{"entry": "acknowledged after it"}',
        '{"entry": "acknowledged right before the failover"}',
    ]
    with pytest.raises(httpx.TransportError):  # the old primary takes no more writes
        served_book(a)
    assert b.timers_on() == ["deplat-backup@web.timer"] and fence["timers"]["new"]["on"] is True
    assert a.masked() == ["deplat-backup@web.timer"] and a.timers_on() == []
    assert "error" not in fence["timers"]["old"]
    # the repositories name gcp-b the primary: hetzner-a's timers, if it came back, back nothing up
    assert fence["lease"]["site"] == "gcp-b" and fence["lease"]["written"] and not fence["lease"]["skipped"]
    assert len(cloud_apis.requests) >= 3  # the probes asked both control planes
    journal = f.journal.path.read_text()
    assert HCLOUD_TOKEN not in journal and GCP_TOKEN not in journal and RESTIC_PASSWORD not in journal


def test_a_site_that_refuses_the_apps_key_stops_the_restore_before_anything_is_touched(
    spec: Spec, secrets: SecretStore, tmp_path: Path
) -> None:
    from deplat.transport.keys import generate

    source = tmp_path / "elsewhere"
    write_files(source, {"book.jsonl": '{"entry": "backed up"}\n'})
    [repo, *_] = repositories.for_site(spec, secrets, "gcp-b")
    restic = Restic(repo, RESTIC_PASSWORD, DirectTransport(tmp_path))
    restic.init()
    restic.backup(str(source), site="hetzner-a", app="shop", service="web")
    with cloud_vm(tmp_path / "vm-x", B, generate("someone-else").public_line, spec) as vm:
        write_book(vm, "theirs")
        vm.start("web")
        with pytest.raises(KeyRefused) as refused:
            data.restore(
                spec,
                "gcp-b",
                reference_time=time.time(),
                secrets=secrets,
                driver=OutputsDriver(spec, secrets, vm),
            )
        assert vm.calls() == ["start deplat-web.service"]  # only the test's own start: nothing stopped
        assert "theirs" in served_book(vm)
    assert "refused the app's SSH key" in refused.value.message and "authorized_keys" in (
        refused.value.hint or ""
    )
