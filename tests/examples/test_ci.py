"""examples/ci/: the GitHub Actions workflow and the GitLab CI file are valid against the schemas
check-jsonschema vendors, and their deplat commands work as written on the guestbook example."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
GITHUB = CI / "github-deplat.yml"
GITLAB = CI / "gitlab-ci.yml"


def load(path: Path) -> Any:
    """YAML 1.2, as CI systems read it (PyYAML's YAML 1.1 turns the key `on` into True)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def vendored_schema(name: str) -> dict[str, Any]:
    import check_jsonschema

    folder = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    return dict(json.loads((folder / f"{name}.json").read_text(encoding="utf-8")))


def errors(doc: Any, schema: str) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(vendored_schema(schema))
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.slow  # the vendored schema takes most of a second to load
def test_the_github_workflow_is_valid_and_the_check_would_catch_a_broken_one() -> None:
    doc = load(GITHUB)
    assert errors(doc, "github-workflows") == []
    assert set(doc["on"]) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    broken = {
        **doc,
        "jobs": {"drill": {"runs-on": "ubuntu-latest", "steps": [{"run": ["not", "a", "string"]}]}},
    }
    assert errors(broken, "github-workflows")


def test_the_gitlab_file_is_valid_and_the_check_would_catch_a_broken_one() -> None:
    doc = load(GITLAB)
    assert errors(doc, "gitlab-ci") == []
    assert errors({**doc, "drill": {**doc["drill"], "when": "sometimes"}}, "gitlab-ci")


def github_runs(job: str) -> list[str]:
    return [step["run"] for step in load(GITHUB)["jobs"][job]["steps"] if "run" in step]


def deplat_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"^\s*deplat\s", line)]


def test_both_files_run_the_same_deplat_commands() -> None:
    gitlab = load(GITLAB)
    github = [line for job in ("validate", "drill", "failover") for line in deplat_lines(github_runs(job))]
    lab = [
        line
        for job in ("validate", "drill", "failover")
        for key in ("script", "after_script")
        for line in deplat_lines(gitlab[job].get(key, []))
    ]
    assert sorted(github) == sorted(lab)


def test_the_secrets_reach_the_failover_job_only_and_never_through_the_command_line() -> None:
    jobs = load(GITHUB)["jobs"]
    assert "secrets." in json.dumps(jobs["failover"]) and "secrets." not in json.dumps(
        {k: v for k, v in jobs.items() if k != "failover"}
    )
    assert all("${{" not in run for run in github_runs("failover"))  # inputs go through env: no injection


@pytest.fixture
def app(tmp_path: Path) -> Any:
    """A copy of the guestbook on a fresh loopback /24, with a `deplat` on PATH that runs this tree."""
    folder = tmp_path / "app"
    shutil.copytree(ROOT / "examples" / "guestbook", folder)
    net = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}"
    spec = folder / "deplat.yaml"
    spec.write_text(re.sub(r"127\.0\.0\.(1[0-3])", rf"{net}.\1", spec.read_text()), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "deplat"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m deplat "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DEPLAT_FRONT_DOOR"},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "DEPLAT_SPEC": "deplat.yaml",
        "DEPLAT_FRONT_DOOR": f"{net}.10",
        "TO": "local-b",
    }

    def run(lines: list[str]) -> None:
        for line in deplat_lines(lines):
            proc = subprocess.run(
                ["bash", "-ec", line], cwd=folder, env=env, capture_output=True, text=True, timeout=300
            )
            assert proc.returncode == 0, f"{line}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    yield folder, run
    subprocess.run(["bash", "-c", "deplat destroy -f deplat.yaml --yes"], cwd=folder, env=env, timeout=120)


@pytest.mark.slow
def test_the_workflows_deplat_commands_work_as_written_on_the_guestbook(app: Any) -> None:
    folder, run = app
    run(github_runs("validate"))
    run(github_runs("drill"))
    suite = ET.parse(folder / "drill-junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    for name in ("drill-report.md", "drill-report.svg", "drill-report.html"):
        assert (folder / name).stat().st_size > 0
    assert "```mermaid" in (folder / "drill-report.md").read_text()
    run(["deplat up -f deplat.yaml --yes"])  # a failover acts on sites that are up
    run(github_runs("failover"))
    state = json.loads((folder / ".deplat" / "active.json").read_text())
    assert state["primary"] == "local-b"
