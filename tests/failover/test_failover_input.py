"""Bad input stops a failover with exit 2 before anything is journaled; a full disk never leaves an
empty journal, and the failover works once the disk has room again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deplat.cli import run as cli_run
from deplat.errors import InputError
from deplat.failover.journal import Journal
from deplat.failover.run import run_failover
from deplat.secrets import SecretStore
from deplat.spec import load_spec
from tests.failover.conftest import guestbook_doc


def spec_with_cloud_target(tmp_path: Path, **backups: str):
    doc = guestbook_doc("127.9.9", 18080)
    doc["sites"].append({"name": "hetzner-fsn", "provider": "hcloud", "role": "cold", "region": "fsn1"})
    for svc in doc["services"].values():  # Hetzner volumes are at least 10 GiB
        for volume in svc.get("volumes", []):
            volume["size"] = max(volume["size"], 10)
    doc["state"] = {"passphrase": {"env": "DEPLAT_TEST_NO_SUCH_PASSPHRASE"}}
    doc["backups"].update(backups)
    path = tmp_path / "deplat.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_spec(path)


def test_a_cloud_target_without_a_passphrase_is_bad_input_and_nothing_is_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPLAT_TEST_NO_SUCH_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    spec = spec_with_cloud_target(tmp_path)
    with pytest.raises(InputError):
        run_failover(spec, SecretStore(spec, environ={}), to="hetzner-fsn")
    assert Journal.all(spec) == []


def test_cli_failover_to_an_unknown_site_or_with_a_bad_backup_store_exits_2_with_no_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_with_cloud_target(tmp_path, store="ftp://backups.example/x")
    assert cli_run(["-f", str(spec.source), "failover", "--to", "nowhere", "--yes"]) == 2
    assert "no such site" in capsys.readouterr().err
    assert cli_run(["-f", str(spec.source), "failover", "--to", "site-b", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "ftp://" in err and "Traceback" not in err
    assert Journal.all(spec) == []


def test_cli_watch_stops_with_exit_2_on_bad_input_instead_of_repeating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_with_cloud_target(tmp_path, store="ftp://backups.example/x")
    assert cli_run(["-f", str(spec.source), "--json", "watch", "--for", "3"]) == 2
    captured = capsys.readouterr()
    assert "cycle failed" not in captured.out + captured.err
    assert captured.err.count("error:") == 1 and "stores are not supported" in captured.err


UNSHARE = shutil.which("unshare")


def _full_disk_script(spec_path: Path, journal_dir: Path) -> str:
    deplat = f"{sys.executable} -m deplat -f {spec_path}"
    return f"""
set -u
mount -t tmpfs -o size=64k,mode=0700 tmpfs {journal_dir}
dd if=/dev/zero of={journal_dir}/fill bs=4k count=64 2>/dev/null
{deplat} failover --to site-b --yes; echo "exit=$?"
echo "empty=$(find {journal_dir} -name '*.jsonl' -size 0 | wc -l) journals=$(find {journal_dir} -name '*.jsonl' | wc -l)"
rm {journal_dir}/fill
{deplat} failover --to site-b --yes; echo "exit=$?"
echo "empty=$(find {journal_dir} -name '*.jsonl' -size 0 | wc -l) journals=$(find {journal_dir} -name '*.jsonl' | wc -l)"
"""


@pytest.mark.slow
@pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0, reason="needs unshare and root for a tmpfs")
def test_a_full_disk_leaves_no_empty_journal_and_the_failover_works_once_it_frees(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    journal_dir = guestbook.dir / ".deplat" / "journal"
    journal_dir.mkdir(parents=True, exist_ok=True)
    script = _full_disk_script(guestbook.path, journal_dir)
    done = subprocess.run(
        [str(UNSHARE), "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("exit=", "empty="))]
    assert lines == ["exit=2", "empty=0 journals=0", "exit=0", "empty=0 journals=1"], (
        done.stdout + done.stderr
    )
    assert "no space left" in done.stderr and "Traceback" not in done.stderr
