"""``deplat plan``: offline plans under mocks, the CLI's table and JSON, and the online path."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from deplat.cli import run
from deplat.cli.argv import hoist_globals
from deplat.plan import plan_offline
from deplat.secrets import SecretStore
from deplat.sites import SiteResult
from deplat.spec.loader import load_spec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT / "examples/cloud/deplat.yaml"
GUESTBOOK = ROOT / "examples/guestbook/deplat.yaml"
TOKEN = "guestbook-admin-Token-42"


@pytest.fixture
def cloud(tmp_path: Path) -> Path:
    path = tmp_path / "deplat.yaml"
    shutil.copy(CLOUD, path)
    return path


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "HCLOUD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))


@pytest.mark.slow
def test_plan_offline_lists_each_cloud_site_without_credentials(cloud: Path, no_credentials: None) -> None:
    spec = load_spec(cloud)
    plans = plan_offline(spec)
    assert [(p.site, p.kind) for p in plans] == [
        ("aws-fra", "pulumi"),
        ("hetzner-fsn", "pulumi"),
        ("gcp-ew", "pulumi"),
    ]
    kinds = {p.site: sorted(r.kind for r in p.resources) for p in plans}
    assert "aws:ec2.Instance" in kinds["aws-fra"]
    assert "hcloud:Server" in kinds["hetzner-fsn"]
    assert "gcp:compute.Instance" in kinds["gcp-ew"]
    for plan in plans:
        vm = next(r for r in plan.resources if r.kind.endswith(("Instance", "Server")))
        assert vm.secrets and all(vm.properties[path.split(".")[0]] == "[secret]" for path in vm.secrets)
        assert set(plan.outputs) >= {"ipv4", "url", "instance_id"}
        # Hetzner's backups go to Object Storage through restic, which makes its own bucket
        assert ("bucket" in plan.outputs) is (plan.provider != "hcloud")


@pytest.mark.slow
def test_plan_is_stable_from_run_to_run(cloud: Path) -> None:
    spec = load_spec(cloud)
    first = [p.to_dict() for p in plan_offline(spec)]
    assert first == [p.to_dict() for p in plan_offline(spec)]


@pytest.mark.slow
def test_plan_notes_unset_secrets_but_never_reads_values_into_it(cloud: Path) -> None:
    spec = load_spec(cloud)
    secrets = SecretStore(spec, environ={"GUESTBOOK_ADMIN_TOKEN": TOKEN})
    plans = plan_offline(spec, [spec.site("hetzner-fsn")], secrets)
    assert TOKEN not in json.dumps([p.to_dict() for p in plans])
    assert plans[0].notes == [
        "server type cx23 (small in fsn1)",
        "secret HCLOUD_TOKEN is not set: `deplat up` will not start without it",
    ]


def test_local_sites_are_described_not_planned() -> None:
    spec = load_spec(GUESTBOOK)
    plans = plan_offline(spec)
    assert [p.notes for p in plans] == [
        ["runs 1 process on 127.0.0.11 (no Pulumi program)"],
        ["runs 1 process on 127.0.0.12 (no Pulumi program)"],
        ["runs 1 process on 127.0.0.13 (no Pulumi program)"],
    ]
    assert all(p.kind == "local" and not p.resources for p in plans)


@pytest.mark.slow
def test_cli_plan_offline_prints_a_table_per_site(cloud: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--no-color", "-f", str(cloud), "plan", "--offline", "--site", "gcp-ew"]) == 0
    out = capsys.readouterr().out
    assert "gcp-ew (gcp, cold): 8 resources to create" in out  # with the two APIs it enables
    assert "aws-fra" not in out
    assert "metadata=[secret]" in out


@pytest.mark.slow
def test_cli_plan_offline_json_masks_secret_values(
    cloud: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUESTBOOK_ADMIN_TOKEN", TOKEN)
    argv = ["-f", str(cloud), "plan", "--offline", "--json", "-s", "aws-fra", "-s", "hetzner-fsn"]
    assert run(hoist_globals(argv)) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["ok"] is True and doc["offline"] is True
    assert [s["site"] for s in doc["sites"]] == ["aws-fra", "hetzner-fsn"]
    assert TOKEN not in out


def test_cli_plan_unknown_site_is_exit_2_naming_the_known_ones(
    cloud: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--no-color", "-f", str(cloud), "plan", "--offline", "--site", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no site named 'nope'" in err and "aws-fra, hetzner-fsn, gcp-ew" in err


def test_cli_plan_online_runs_a_preview_of_cloud_sites(
    cloud: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import deplat.operations as api

    seen: list[Any] = []

    def fake_preview(spec: Any, sites: Any, secrets: Any, emit: Any) -> list[SiteResult]:
        seen.append([s.name for s in sites])
        return [SiteResult(s.name, "preview", True, changes={"create": 8}) for s in sites]

    monkeypatch.setattr(api, "preview_sites", fake_preview)
    assert run(["--json", "-f", str(cloud), "plan"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert seen == [["aws-fra", "hetzner-fsn", "gcp-ew"]]
    assert doc["offline"] is False and doc["sites"][0]["changes"] == {"create": 8}


def test_cli_plan_without_the_pulumi_sdks_names_the_extras_to_install(
    cloud: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from deplat import preflight

    monkeypatch.setattr(preflight, "installed", lambda module: not module.startswith("pulumi"))
    for args in (["plan"], ["plan", "--offline"]):
        assert run(["--no-color", "-f", str(cloud), *args]) == 2
        err = capsys.readouterr().err
        assert "pip install 'deplat[aws]'" in err and "pip install 'deplat[gcp]'" in err


@pytest.mark.slow
def test_cli_plans_sites_side_by_side_with_the_same_result(
    cloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "GUESTBOOK_ADMIN_TOKEN"}
    argv = [sys.executable, "-m", "deplat", "plan", "--offline", "--json", "-f", str(cloud)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=cloud.parent)
    assert done.returncode == 0, done.stderr
    forked = json.loads(done.stdout)["sites"]  # a fresh process: planned in forked workers
    monkeypatch.delenv("GUESTBOOK_ADMIN_TOKEN", raising=False)
    spec = load_spec(cloud)
    here = [p.to_dict() for p in plan_offline(spec, secrets=SecretStore(spec), parallel=False)]
    assert forked == json.loads(json.dumps(here, default=str))


def test_plan_table_shows_a_firewall_rule_per_line_and_leaves_labels_out() -> None:
    from deplat.cli.render.plan import properties_text

    props = {
        "rules": [{"direction": "in", "port": "443", "protocol": "tcp", "sourceIps": ["0.0.0.0/0", "::/0"]}],
        "bootDisk": {"initializeParams": {"image": "ubuntu", "labels": {"deplat-app": "shop"}}},
        "userData": "[secret]",
    }
    assert properties_text(props).splitlines() == [
        "bootDisk.initializeParams.image=ubuntu",
        "rules[0]=direction=in port=443 protocol=tcp sourceIps=0.0.0.0/0,::/0",
        "userData=[secret]",
    ]
