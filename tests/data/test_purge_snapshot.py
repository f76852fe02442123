"""``deplat destroy --purge-data`` takes a final restic snapshot of each stateful service first
(a local site: through the local backup path, into a real restic repository), names it in the
result, and refuses to purge when the snapshot fails, unless ``--no-snapshot``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.data.restic import Repository, Restic
from deplat.failover.backup import service_data_dir
from deplat.spec.loader import load_spec
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.data.test_backups_cli import write_spec
from tests.support.trees import write_files

pytestmark = pytest.mark.slow


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOP_RESTIC", PASSWORD)
    path = write_spec(tmp_path, "    - {name: dir, type: local, path: repo}\n")
    write_files(service_data_dir(load_spec(path), "a", "web"), {"orders.db": "the last orders"})
    return path


def test_purge_takes_a_final_snapshot_names_it_and_the_data_can_come_back(
    spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = service_data_dir(load_spec(spec_file), "a", "web")
    assert run(["--json", "-f", str(spec_file), "destroy", "--site", "a", "--purge-data", "--yes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (site,) = doc["sites"]
    assert site["ok"] and site["deleted"] == ["data folder"] and not data.exists()
    (snap,) = site["snapshots"]
    assert snap["service"] == "web" and snap["location"] == "dir"
    restic = Restic(Repository("dir", str(tmp_path / "repo"), "local"), PASSWORD, DirectTransport(tmp_path))
    restic.restore(snap["id"], str(tmp_path / "back"))
    assert next((tmp_path / "back").rglob("orders.db")).read_text() == "the last orders"
    assert PASSWORD not in json.dumps(doc)


def test_a_failed_snapshot_refuses_the_purge_and_no_snapshot_overrides(
    spec_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_RESTIC")  # the restic password is missing: no backup can be taken
    data = service_data_dir(load_spec(spec_file), "a", "web")
    assert run(["-f", str(spec_file), "destroy", "--site", "a", "--purge-data", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "no final snapshot of its data, so nothing was purged" in err and "--no-snapshot" in err
    assert "SHOP_RESTIC" in err and (data / "orders.db").read_text() == "the last orders"
    args = [
        "--json",
        "-f",
        str(spec_file),
        "destroy",
        "--site",
        "a",
        "--purge-data",
        "--no-snapshot",
        "--yes",
    ]
    assert run(args) == 0
    (site,) = json.loads(capsys.readouterr().out)["sites"]
    assert site["ok"] and site["snapshots"] == [] and not data.exists()


def test_no_snapshot_without_purge_is_a_usage_error(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["-f", str(spec_file), "destroy", "--site", "a", "--no-snapshot", "--yes"]) == 2
    assert "--no-snapshot goes with --purge-data" in capsys.readouterr().err
