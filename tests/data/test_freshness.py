"""``deplat doctor`` warns when a stateful service's newest snapshot is older than three backup
intervals, reading real restic repositories (a local one; a dead S3 endpoint is named as skipped)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.data import freshness
from deplat.data.restic import Repository, Restic
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from deplat.transport import DirectTransport
from tests.data.conftest import PASSWORD
from tests.data.test_backups_cli import write_spec
from tests.support.object_storage import KEY_ID, SECRET, free_port
from tests.support.trees import write_files

pytestmark = pytest.mark.slow


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOP_RESTIC", PASSWORD)
    monkeypatch.setenv("S3_ID", KEY_ID)
    monkeypatch.setenv("S3_KEY", SECRET)
    repos = (
        "    - {name: dir, type: local, path: repo}\n"
        f"    - {{name: gone, type: s3, endpoint: 'http://127.0.0.1:{free_port()}', bucket: bkt,"
        " access_key: S3_ID, secret_key: S3_KEY, deadline: 2}\n"
    )
    path = write_spec(tmp_path, repos)
    path.write_text(path.read_text().replace("backups:\n", "backups:\n  interval: 60\n"))
    restic = Restic(Repository("dir", str(tmp_path / "repo"), "local"), PASSWORD, DirectTransport(tmp_path))
    restic.init()
    write_files(tmp_path / "data", {"f": "x"})
    restic.backup(str(tmp_path / "data"), site="a", app="shop", service="web")
    return path


def test_a_snapshot_older_than_three_intervals_is_a_warning_and_a_dead_repository_is_named(
    spec_file: Path,
) -> None:
    spec = load_spec(spec_file)
    secrets = SecretStore(spec)
    fresh = {c.name: c for c in freshness.checks(spec, secrets, now=time.time() + 60)}
    assert fresh["backups web"].ok and not fresh["backups web"].required
    assert not fresh["repository gone"].ok and fresh["repository gone"].detail.startswith("skipped")
    stale = {c.name: c for c in freshness.checks(spec, secrets, now=time.time() + 4 * 60)}
    assert not stale["backups web"].ok and "old (3 intervals: 3 min)" in stale["backups web"].detail
    assert "backup timers" in (stale["backups web"].hint or "")


def test_doctor_lists_the_backup_rows_and_stays_ok_on_a_warning(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--json", "-f", str(spec_file), "doctor"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    rows = {c["name"]: c for c in doc["checks"]}
    assert rows["backups web"]["ok"] is True and "newest snapshot" in rows["backups web"]["detail"]
    assert rows["repository gone"]["required"] is False  # a warning: doctor's verdict is the others'
    assert PASSWORD not in json.dumps(doc) and SECRET not in json.dumps(doc)
