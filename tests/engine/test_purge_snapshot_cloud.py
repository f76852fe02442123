"""``destroy --purge-data`` of cloud sites against the fake ``pulumi`` CLI: nothing deployed needs no
final snapshot; a deployed site whose port 22 is closed to everyone cannot have one, so its purge
is refused (exit 1) naming the fix, and ``--no-snapshot`` purges it. The snapshot over SSH itself
(restic on the VM) is ``deplat.remote.data``'s, tested over a real sshd in tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.conftest import SPEC
from tests.support.cli import Cli

STATEFUL = SPEC.replace(
    "    secrets: [SHOP_ADMIN_TOKEN]\n",
    "    secrets: [SHOP_ADMIN_TOKEN]\n    volumes: [{name: data, path: /data, size: 10}]\n",
).replace(
    "domain:",
    "backups:\n  repositories:\n"
    "    - {name: s3, type: s3, bucket: b1, region: eu-central-1, access_key: K1, secret_key: K2}\n"
    "    - {name: hz, type: hcloud, bucket: b2, region: fsn1, access_key: K3, secret_key: K4}\n"
    "    - {name: gcs, type: gcs, bucket: b3, access_key: K5, secret_key: K6}\n"
    "domain:",
)


@pytest.fixture
def stateful(cloud_spec_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud_spec_path.write_text(STATEFUL)
    for name in ("K1", "K2", "K3", "K4", "K5", "K6", "DEPLAT_BACKUP_PASSWORD"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")


def test_a_cloud_site_never_stood_up_is_purged_without_a_snapshot(
    stateful: None, cloud_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cloud_cli("--json", "destroy", "--purge-data", "--yes", "--site", "hc-b") == 0
    [site] = json.loads(capsys.readouterr().out)["sites"]
    assert site["ok"] and site["snapshots"] == []


@pytest.mark.slow
def test_a_deployed_site_without_ssh_is_not_purged_and_no_snapshot_overrides(
    stateful: None, cloud_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cloud_cli("up", "--yes", "--site", "aws-a") == 0
    capsys.readouterr()
    assert cloud_cli("destroy", "--purge-data", "--yes", "--site", "aws-a") == 1
    err = capsys.readouterr().err
    assert "no final snapshot of its data, so nothing was purged" in err
    assert "options.ssh_cidrs" in err and "--no-snapshot" in err
    assert cloud_cli("--json", "destroy", "--purge-data", "--no-snapshot", "--yes", "--site", "aws-a") == 0
    [site] = json.loads(capsys.readouterr().out)["sites"]
    assert site["ok"] and site["deleted"] == ["data volume", "backup bucket"]
