"""A site's services and backup timers driven through ``systemctl`` (here the FAKE one, run directly:
the same commands go over SSH to a VM), and the warning for cloud sites whose SSH is closed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.remote import Layout, RemoteSite
from deplat.remote import services as units
from deplat.remote.access import warnings
from deplat.spec.loader import load_text
from deplat.transport import DirectTransport
from tests.support.cloud_vm import FAKE_SYSTEMCTL
from tests.support.fake_systemctl import stop_all

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT / "examples/cloud/deplat.yaml"


def on_this_machine(tmp_path: Path, service_host: str = "127.0.0.1") -> RemoteSite:
    layout = Layout(
        data_dir=str(tmp_path / "srv"),
        systemctl=(sys.executable, str(FAKE_SYSTEMCTL), str(tmp_path / "systemd")),
        service_host=service_host,
    )
    return RemoteSite("vm", DirectTransport(tmp_path), layout)


@pytest.mark.slow
def test_a_masked_backup_timer_stays_off_until_the_site_is_the_primary_again(tmp_path: Path) -> None:
    site = on_this_machine(tmp_path)
    assert units.backup_timers(site, ["web", "db"], True) == [
        "deplat-backup@web.timer",
        "deplat-backup@db.timer",
    ]
    assert site.transport.run([*site.layout.systemctl, "is-active", "deplat-backup@db.timer"]).ok
    units.backup_timers(site, ["web", "db"], False)
    assert not site.transport.run([*site.layout.systemctl, "is-active", "deplat-backup@db.timer"]).ok
    # a service's unit that Wants= its timer (a reboot of the old primary) cannot start it again
    started = site.transport.run([*site.layout.systemctl, "start", "deplat-backup@db.timer"])
    assert not started.ok and "masked" in started.stderr
    units.backup_timers(site, ["web", "db"], True)
    assert site.transport.run([*site.layout.systemctl, "is-active", "deplat-backup@db.timer"]).ok


def test_a_failing_systemctl_names_the_site_and_the_command(tmp_path: Path) -> None:
    from deplat.errors import OperationFailed

    site = on_this_machine(tmp_path)
    with pytest.raises(OperationFailed, match=r"on vm .*start deplat-web.service.* not found"):
        units.start(site, load_text((ROOT / "examples/guestbook/deplat.yaml").read_text()), ["web"], 1.0)


@pytest.mark.slow
def test_health_is_checked_on_the_site_and_a_stopped_service_is_reported_stopped(tmp_path: Path) -> None:
    spec = load_text(
        "app: shop\nservices:\n  web:\n    image: x\n    ports: [{port: 18472, public: true}]\n"
        "    volumes: [{name: data, path: /data, size: 10}]\n    health: {port: 18472, path: /ok}\n"
        "domain: {zone: shop.example.org, names: [shop.example.org]}\n"
        "sites:\n  - {name: a, provider: aws, role: primary, region: eu-central-1}\n"
        "  - {name: b, provider: gcp, role: warm, region: europe-west3, options: {project: shop-standby}}\n"
    )
    site = on_this_machine(tmp_path, "127.0.0.63")
    folder = Path(site.layout.service_data("web")) / "data"
    folder.mkdir(parents=True)
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.63", "18472", "--directory", str(folder)]
    units_dir = tmp_path / "systemd" / "units"
    units_dir.mkdir(parents=True)
    (units_dir / "deplat-web.service.json").write_text(json.dumps({"argv": argv}))
    try:
        assert units.start(site, spec, ["web"], 2.0) == []  # it runs, but /ok answers 404
        (folder / "ok").write_text("ok")
        assert units.wait_healthy(site, spec, ["web"], 5.0) == ["web"]
        assert units.stop(site, ["web"], 10.0) == ["web"]
        assert units.wait_healthy(site, spec, ["web"], 0.5) == []
    finally:
        stop_all(tmp_path / "systemd")


def test_cloud_sites_with_ssh_closed_are_named_with_the_fix() -> None:
    spec = load_text(CLOUD.read_text())
    found = warnings(spec)
    assert [w.split(":")[0] for w in found] == ["site aws-fra", "site hetzner-fsn", "site gcp-ew"]
    assert all("options.ssh_cidrs" in w and "deplat up --site" in w for w in found)


def test_validate_warns_about_closed_ssh_in_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--no-color", "-f", str(CLOUD), "validate"]) == 0  # a warning, not an error
    assert "warning: site hetzner-fsn: port 22 is closed" in capsys.readouterr().out
    assert run(["--json", "-f", str(CLOUD), "validate"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["warnings"]) == 3 and "hetzner-fsn" in doc["warnings"][1]


def test_no_warning_once_every_cloud_site_has_ssh_cidrs(tmp_path: Path) -> None:
    text = CLOUD.read_text()
    for name in ("aws-fra", "hetzner-fsn"):
        text = text.replace(
            f"  - name: {name}\n", f"  - name: {name}\n    options: {{ssh_cidrs: [203.0.113.7/32]}}\n"
        )
    text = text.replace(
        "options: {project: guestbook-standby}",
        "options: {project: guestbook-standby, ssh_cidrs: [203.0.113.7/32]}",
    )
    assert warnings(load_text(text)) == []
