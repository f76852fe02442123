"""The spec commands through the real CLI entry point: validate, schema, init, show."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.cli.argv import hoist_globals

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT / "examples/cloud/deplat.yaml"
GUESTBOOK = ROOT / "examples/guestbook/deplat.yaml"


def test_validate_ok_says_what_it_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--no-color", "-f", str(GUESTBOOK), "validate"]) == 0
    assert "app guestbook, 1 service, 3 sites (primary local-a)" in capsys.readouterr().out


def test_validate_json_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(hoist_globals(["validate", "-f", str(CLOUD), "--json"])) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["app"] == "guestbook"
    assert [s["provider"] for s in doc["sites"]] == ["aws", "hcloud", "gcp"]


def test_validate_json_reports_problems_as_data(capsys: pytest.CaptureFixture[str]) -> None:
    bad = Path(__file__).parent / "bad" / "two-primaries.yaml"
    assert run(["--json", "-f", str(bad), "validate"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert doc["problems"][0]["line"] == 19 and doc["problems"][0]["path"] == "sites[1].role"


def test_missing_spec_file_is_one_message_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--no-color", "-f", str(tmp_path / "nope.yaml"), "validate"]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: no such file" in err and "deplat init" in err and "Traceback" not in err


def test_unknown_command_is_usage_error() -> None:
    assert run(["frobnicate"]) == 2


def test_hoist_moves_global_options_in_front_and_keeps_the_rest() -> None:
    assert hoist_globals(["up", "--site", "a", "--json", "-f", "x.yaml", "--yes"]) == [
        "--json", "-f", "x.yaml", "up", "--site", "a", "--yes",
    ]  # fmt: skip
    assert hoist_globals(["failover", "--", "--json"]) == ["failover", "--", "--json"]


@pytest.mark.parametrize("kind", ["local", "cloud"])
def test_init_writes_a_starter_that_validates(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "deplat.yaml"
    assert run(["-f", str(target), "init", f"--{kind}"]) == 0
    assert target.read_text().startswith("# yaml-language-server")
    assert run(["-f", str(target), "validate"]) == 0


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "deplat.yaml"
    target.write_text("app: mine\n")
    assert run(["--no-color", "-f", str(target), "init"]) == 2
    assert target.read_text() == "app: mine\n"
    assert "already exists" in capsys.readouterr().err


def test_init_refuses_both_kinds(tmp_path: Path) -> None:
    assert run(["-f", str(tmp_path / "d.yaml"), "init", "--local", "--cloud"]) == 2
    assert not (tmp_path / "d.yaml").exists()


def test_schema_prints_json_schema_and_writes_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "deplat.yaml (v1)"
    assert run(["schema", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "deplat.yaml (v1)"


def test_show_resolves_defaults_and_masks_secret_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "deplat.yaml"
    shutil.copy(CLOUD, spec)
    monkeypatch.setenv("GUESTBOOK_ADMIN_TOKEN", "s3cr3t-admin-token-value")
    (tmp_path / "secrets.env").write_text("HCLOUD_TOKEN=hcloud-token-from-file\n")
    spec.write_text(spec.read_text() + "secrets_file: secrets.env\n")
    for args in (["show"], ["--json", "show"]):
        assert run(["-f", str(spec), *args]) == 0
        out = capsys.readouterr().out
        assert "s3cr3t-admin-token-value" not in out and "hcloud-token-from-file" not in out
        assert "GUESTBOOK_ADMIN_TOKEN" in out and "(set)" in out
        assert "DNS_TSIG_SECRET" in out and "(not set)" in out
    doc = json.loads(out)
    assert doc["failover"]["failures_to_down"] == 3 and doc["domain"]["ttl"] == 60
    assert doc["primary"] == "aws-fra"


def test_show_gives_local_sites_their_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--json", "-f", str(GUESTBOOK), "show"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["address"] for s in doc["sites"]] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def test_version() -> None:
    assert run(["--version"]) == 0
