"""`deplat destroy --purge-data` and `deplat up --replace-vm` against the fake `pulumi` CLI.

The fake records every invocation: the tests check what deplat asks the engine for (the purge's
targeted `up` before the destroy, the VM's URN after `--replace`), not what a cloud would do. The
programs' side (retention dropped, first-boot inputs no longer ignored) is tested under Pulumi's
mocks in tests/stacks/test_updates_keep_data.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from tests.engine.conftest import SPEC, FakePulumi, write_spec
from tests.support.cli import Cli, cli

AWS_DATA = [
    "urn:pulumi:aws-a::shop::aws:ebs/volume:Volume::aws-a-data",
    "urn:pulumi:aws-a::shop::aws:s3/bucket:Bucket::shop-aws-a-backups",
]
HC_VM = "urn:pulumi:hc-b::shop::hcloud:index/server:Server::hc-b-vm"


def flag_values(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def updates(fake: FakePulumi) -> list[list[str]]:
    """argv of every engine run (up, preview, destroy), in order."""
    return [c["argv"] for c in fake.calls() if {"up", "preview", "destroy"} & set(c["argv"])]


@pytest.mark.slow
def test_destroy_purge_data_first_drops_retention_then_deletes_the_data(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes", "--site", "aws-a") == 0
    before = len(updates(fake_pulumi))
    capsys.readouterr()
    assert cloud_cli("--json", "destroy", "--purge-data", "--yes", "--site", "aws-a") == 0
    runs = updates(fake_pulumi)[before:]
    assert ["up" in r for r in runs] == [True, False] and "destroy" in runs[1]
    assert sorted(flag_values(runs[0], "--target")) == AWS_DATA  # only the data, nothing else updated
    [site] = json.loads(capsys.readouterr().out)["sites"]
    assert site["ok"] and site["deleted"] == ["data volume", "backup bucket"] and site["kept"] == []


@pytest.mark.slow
def test_destroy_without_purge_keeps_the_data_and_updates_nothing(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes", "--site", "hc-b") == 0
    before = len(updates(fake_pulumi))
    capsys.readouterr()
    assert cloud_cli("destroy", "--yes", "--site", "hc-b") == 0
    runs = updates(fake_pulumi)[before:]
    assert len(runs) == 1 and "destroy" in runs[0]
    assert "kept: hc-b: data volume" in capsys.readouterr().out


def test_destroy_purge_data_asks_naming_the_data_it_deletes(
    cloud_spec_path: Path,
    fake_pulumi: FakePulumi,
    stand_ins: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    asked: list[str] = []

    def answer_no(question: str, default: bool = False) -> bool:
        asked.append(question)
        return False

    monkeypatch.setattr(sys.modules["deplat.cli.app"], "interactive", lambda: True)
    monkeypatch.setattr(sys.modules["deplat.cli.site_cmds"], "interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", answer_no)
    args = ("-f", str(cloud_spec_path), "destroy", "--purge-data", "--site", "aws-a", "--site", "hc-b")
    assert cli(*args) == 1
    assert asked == [
        "destroy 2 site(s) and DELETE their data (aws-a: data volume, backup bucket; hc-b: data volume)?"
    ]
    assert "deleted for good, with the data on them" in capsys.readouterr().out
    assert not updates(fake_pulumi)


def test_destroy_purge_data_of_a_site_never_stood_up_creates_nothing(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
) -> None:
    assert cloud_cli("destroy", "--purge-data", "--yes", "--site", "hc-b") == 0
    assert not fake_pulumi.commands("up") and not fake_pulumi.commands("stack", "init")


@pytest.mark.slow
def test_up_replace_vm_previews_and_updates_with_the_vm_urn(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes", "--site", "hc-b") == 0
    before = len(updates(fake_pulumi))
    capsys.readouterr()
    assert cloud_cli("--json", "up", "--replace-vm", "--yes", "--site", "hc-b") == 0
    runs = updates(fake_pulumi)[before:]
    assert [next(a for a in r if not a.startswith("-")) for r in runs] == ["preview", "up"]
    assert all(flag_values(r, "--replace") == [HC_VM] for r in runs)
    [site] = json.loads(capsys.readouterr().out)["sites"]
    assert site["changes"].get("replace") == 1  # the fake replaces what --replace names


def test_up_replace_vm_asks_first_even_at_a_terminal(cloud_cli: Cli, fake_pulumi: FakePulumi) -> None:
    assert cloud_cli("up", "--replace-vm", "--site", "hc-b") == 2
    assert not fake_pulumi.commands("up")


@pytest.mark.slow
def test_plan_replace_vm_shows_the_replacement(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--yes", "--site", "hc-b") == 0
    capsys.readouterr()
    assert cloud_cli("--json", "plan", "--replace-vm", "--site", "hc-b") == 0
    [site] = json.loads(capsys.readouterr().out)["sites"]
    assert site["changes"].get("replace") == 1
    [preview] = fake_pulumi.commands("preview")[-1:]
    assert flag_values(preview["argv"], "--replace") == [HC_VM]


def test_replace_vm_without_a_named_site_is_refused(
    cloud_cli: Cli,
    fake_pulumi: FakePulumi,
    capsys: pytest.CaptureFixture,
) -> None:
    assert cloud_cli("up", "--replace-vm", "--yes") == 2
    assert "--site" in capsys.readouterr().err
    assert not updates(fake_pulumi)


def test_replace_vm_of_a_local_site_is_refused_before_anything_runs(
    tmp_path: Path, fake_pulumi: FakePulumi, stand_ins: dict, no_tty: None, capsys: pytest.CaptureFixture
) -> None:
    path = write_spec(
        tmp_path / "mixed",
        SPEC.replace(
            "    secrets: [SHOP_ADMIN_TOKEN]\n",
            "    secrets: [SHOP_ADMIN_TOKEN]\n    local: {command: [python3, app.py]}\n",
        )
        + "  - {name: local-d, provider: local, role: cold, options: {address: 127.0.0.97}}\n",
    )
    names = ("--site", "hc-b", "--site", "local-d")
    for args in (("up", "--replace-vm", *names, "--yes"), ("plan", "--replace-vm", *names)):
        assert cli("-f", str(path), *args) == 2
        assert "local-d has no VM to replace" in capsys.readouterr().err
    assert not updates(fake_pulumi)
