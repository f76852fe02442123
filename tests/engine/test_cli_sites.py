"""`deplat up / status / destroy / refresh / doctor` through the real CLI entry point, cloud sites on the fake CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deplat.engine import locks
from tests.engine.conftest import ADMIN_TOKEN, FAKE_BIN, HCLOUD_TOKEN, PASSPHRASE, FakePulumi
from tests.support.cli import Cli, cli

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (PASSPHRASE, HCLOUD_TOKEN, ADMIN_TOKEN)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.slow
def test_up_needs_yes_when_not_at_a_terminal(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up") == 2
    err = capsys.readouterr().err
    assert "not at a terminal" in err and "--yes" in err
    assert not fake_pulumi.commands("up")  # previewed, nothing applied


@pytest.mark.slow
def test_up_yes_stands_up_sites_and_shows_addresses_without_secrets(
    cloud_cli: Cli,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes") == 0
    out, err = capsys.readouterr()
    assert "aws-a" in out and "hc-b" in out and "203.0.113." in out and "http://203.0.113." in out
    assert "create aws:ec2/instance:Instance aws-a-instance" in out  # plain progress lines
    assert "gcp-c" in out and "skipped" in out
    assert_no_secret(out, err)


@pytest.mark.slow
def test_up_json_is_one_document_and_a_failed_site_exits_1(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    fake_pulumi.scenarios(aws_a="suspended")
    assert cloud_cli("up", "--yes", "--json") == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    by_site = {s["site"]: s for s in doc["sites"]}
    assert doc["ok"] is False and by_site["hc-b"]["ok"] is True
    assert by_site["aws-a"]["error_class"] == "suspended" and by_site["aws-a"]["role"] == "primary"
    assert doc["skipped"] == {"gcp-c": "cold standby: stood up on failover, or with --site gcp-c"}
    assert by_site["hc-b"]["outputs"]["token"] == "********"
    assert_no_secret(out, err)


@pytest.mark.slow
def test_failed_site_is_shown_in_the_providers_words(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    fake_pulumi.scenarios(hc_b="transient", aws_a="suspended")
    assert cloud_cli("up", "--yes") == 1
    out, err = capsys.readouterr()
    assert "FAILED: suspended" in out and "FAILED: transient" in out
    assert "aws-a: account suspended or forbidden: creating EC2 Instance" in err
    assert "hc-b: transient: hcloud: server create: rate limit exceeded" in err
    assert "2 of 2 sites failed" in err


def test_missing_pulumi_cli_says_how_to_install_it(
    cloud_cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != FAKE_BIN)
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if any((Path(p) / "pulumi").exists() for p in path.split(os.pathsep)):
        pytest.skip("a real pulumi CLI is on PATH")
    assert cloud_cli("up", "--yes") == 2
    err = capsys.readouterr().err
    assert "`pulumi` CLI is not installed" in err and "deplat doctor --install-pulumi" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_missing_passphrase_is_a_clear_input_error(
    cloud_cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.delenv("DEPLAT_PASSPHRASE")
    assert cloud_cli("status") == 2
    assert "export DEPLAT_PASSPHRASE" in capsys.readouterr().err


@pytest.mark.slow
def test_status_after_up_reports_roles_and_outputs(cloud_cli: Cli, capsys: pytest.CaptureFixture) -> None:
    assert cloud_cli("up", "--yes", "--site", "aws-a") == 0
    capsys.readouterr()
    assert cloud_cli("status", "--json") == 0
    out, err = capsys.readouterr()
    sites = {s["site"]: s for s in json.loads(out)["sites"]}
    assert sites["aws-a"]["running"] is True and sites["aws-a"]["outputs"]["url"].startswith(
        "http://203.0.113."
    )
    assert sites["hc-b"]["exists"] is False and sites["gcp-c"]["role"] == "cold"
    assert_no_secret(out, err)


@pytest.mark.slow
def test_destroy_asks_first_and_then_takes_sites_down(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes") == 0
    assert cloud_cli("destroy") == 2
    assert not fake_pulumi.commands("destroy")
    assert cloud_cli("destroy", "--yes", "--site", "hc-b") == 0
    destroys = fake_pulumi.commands("destroy")
    assert [c["argv"][-1] for c in destroys] == ["hc-b"]
    capsys.readouterr()
    assert cloud_cli("status", "--json") == 0
    sites = {s["site"]: s for s in json.loads(capsys.readouterr().out)["sites"]}
    assert sites["hc-b"]["exists"] is False and sites["aws-a"]["running"] is True


def test_destroy_says_which_data_it_keeps(cloud_cli: Cli, capsys: pytest.CaptureFixture) -> None:
    assert cloud_cli("destroy", "--site", "aws-a", "--site", "hc-b") == 2
    out = capsys.readouterr().out
    assert "kept, with the data on them" in out
    assert "aws-a: data volume, backup bucket" in out
    assert "hc-b: data volume" in out and "hc-b: data volume, backup bucket" not in out


@pytest.mark.slow
def test_refresh_runs_without_confirmation(cloud_cli: Cli, fake_pulumi: FakePulumi) -> None:
    assert cloud_cli("up", "--yes", "--site", "aws-a") == 0
    assert cloud_cli("refresh", "--site", "aws-a") == 0
    assert len(fake_pulumi.commands("refresh")) == 1


@pytest.mark.slow
def test_stale_lock_is_reported_with_the_fix_and_cleared_only_on_request(
    cloud_spec_path: Path,
    fake_pulumi: FakePulumi,
    stand_ins: dict,
    no_tty: None,
    capsys: pytest.CaptureFixture,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock_dir = (
        cloud_spec_path.parent / ".deplat" / "state" / ".pulumi" / "locks" / "organization" / "shop" / "aws-a"
    )
    lock_dir.mkdir(parents=True)
    lock = lock_dir / "0b6f6a0e.json"
    lock.write_text(
        json.dumps({"pid": gone.pid, "username": "me", "hostname": os.uname().nodename, "timestamp": "then"})
    )
    assert cli("-f", str(cloud_spec_path), "up", "--yes", "--site", "aws-a") == 1
    out = capsys.readouterr().out
    assert "locked by a run that is gone" in out and "--clear-locks" in out
    assert lock.exists()
    assert cli("-f", str(cloud_spec_path), "up", "--yes", "--site", "aws-a", "--clear-locks") == 0
    assert not lock.exists()
    assert "removed a stale state lock" in capsys.readouterr().out


@pytest.mark.slow
def test_a_live_lock_is_never_cleared(
    cloud_spec_path: Path, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    from deplat.spec import load_spec

    spec = load_spec(cloud_spec_path)
    lock_dir = locks.lock_dirs(spec, "aws-a")[0]
    lock_dir.mkdir(parents=True)
    lock = lock_dir / "live.json"
    lock.write_text(json.dumps({"pid": os.getpid(), "username": "me", "hostname": os.uname().nodename}))
    found = locks.find_locks(spec, "aws-a")
    assert [lk.stale for lk in found] == [False]
    assert locks.clear_stale(spec, "aws-a") == [] and lock.exists()
    assert cli("-f", str(cloud_spec_path), "up", "--yes", "--site", "aws-a", "--clear-locks") == 1
    assert lock.exists()


def test_a_lock_from_another_host_is_never_called_stale(cloud_spec_path: Path) -> None:
    from deplat.spec import load_spec

    spec = load_spec(cloud_spec_path)
    lock_dir = locks.lock_dirs(spec, "hc-b")[0]
    lock_dir.mkdir(parents=True)
    (lock_dir / "x.json").write_text(json.dumps({"pid": 999999, "hostname": "elsewhere.example"}))
    assert [lk.stale for lk in locks.find_locks(spec, "hc-b")] == [False]


@pytest.mark.slow
def test_doctor_reports_cli_plugins_credentials_and_backend(
    cloud_cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.delenv("HCLOUD_TOKEN")
    assert cloud_cli("doctor", "--json") == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["pulumi CLI"]["ok"] and "v3.272.0" in checks["pulumi CLI"]["detail"]
    assert checks["plugin aws"]["ok"] is False and checks["plugin aws"]["required"] is False
    assert checks["credentials aws-a"]["ok"] is True
    assert checks["credentials hc-b"] == {
        "name": "credentials hc-b",
        "ok": False,
        "detail": "HCLOUD_TOKEN is not set",
        "hint": None,
        "required": True,
    }
    assert checks["state backend"]["ok"] and "writable" in checks["state backend"]["detail"]


@pytest.mark.slow
def test_doctor_is_happy_once_everything_is_there(cloud_cli: Cli, capsys: pytest.CaptureFixture) -> None:
    assert cloud_cli("up", "--yes", "--site", "aws-a", "--site", "hc-b", "--site", "gcp-c") == 0
    capsys.readouterr()
    assert cloud_cli("doctor") == 0
    out = capsys.readouterr().out
    assert "plugin hcloud" in out and "FAIL" not in out


def test_install_pulumi_needs_consent_and_fails_clearly_offline(
    fake_pulumi: FakePulumi, no_tty: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import urllib.error

    from pulumi.automation import _cmd

    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def offline(url: str, path: str) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(_cmd, "_download_to_file", offline)
    assert cli("doctor", "--install-pulumi") == 2
    assert "--yes" in capsys.readouterr().err
    assert cli("doctor", "--install-pulumi", "--yes") == 1
    err = capsys.readouterr().err
    assert "could not download the Pulumi installer (offline?)" in err and "Traceback" not in err


def test_doctor_on_a_local_only_spec_does_not_need_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != FAKE_BIN)
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = tmp_path / "gb" / "deplat.yaml"
    spec.parent.mkdir()
    shutil.copy(ROOT / "examples" / "guestbook" / "deplat.yaml", spec)
    assert cli("-f", str(spec), "doctor", "--json") == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    if not checks.get("pulumi CLI", {"ok": True})["ok"]:
        assert checks["pulumi CLI"]["required"] is False
    assert checks["state backend"]["ok"]


@pytest.mark.slow
def test_doctor_without_a_spec_checks_the_cli_only(
    tmp_path: Path, fake_pulumi: FakePulumi, capsys: pytest.CaptureFixture
) -> None:
    assert cli("-f", str(tmp_path / "nothing.yaml"), "doctor", "--json") == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [c["name"] for c in checks] == ["pulumi CLI"] and checks[0]["ok"]
