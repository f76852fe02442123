"""The drill's generic data check: fingerprints compared file by file, and the app's own commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deplat.failover.drill import datacheck
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    (tmp_path / "deplat.yaml").write_text(
        """\
version: 1
app: shop
services:
  db:
    image: postgres
    ports: [{port: 5432, public: true}]
    volumes: [{name: data, path: /data}]
    local: {command: [sleep, "60"]}
  web: {image: web, ports: [{port: 8080}], local: {command: [sleep, "60"]}}
domain: {zone: shop.test, names: [shop.test]}
sites:
  - {name: a, provider: local, role: primary, options: {address: 127.0.0.21}}
  - {name: b, provider: local, role: warm, options: {address: 127.0.0.22}}
""",
        encoding="utf-8",
    )
    return load_spec(tmp_path / "deplat.yaml")


def data(spec: Spec, site: str) -> Path:
    folder = spec.base_dir / ".deplat" / "local" / site / "data" / "db"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_same_grown_missing_and_changed_files_are_told_apart(spec: Spec) -> None:
    old, new = data(spec, "a"), data(spec, "b")
    (old / "same").write_bytes(b"kept")
    (old / "log").write_bytes(b"line 1\n")
    (old / "gone").write_bytes(b"lost")
    (old / "sub").mkdir()
    (old / "sub" / "table").write_bytes(b"v1")
    before = datacheck.fingerprint(spec, "a")
    assert list(before) == ["db"]  # only stateful services
    (new / "same").write_bytes(b"kept")
    (new / "log").write_bytes(b"line 1\nline 2\n")  # appended after: the old content is a prefix
    (new / "sub").mkdir()
    (new / "sub" / "table").write_bytes(b"v2")

    (result,) = datacheck.compare(spec, before, "b")

    assert (result.service, result.files, result.same, result.grown) == ("db", 4, 1, 1)
    assert result.missing == ["gone"]
    assert result.changed == ["sub/table"]
    assert not result.ok


def test_declared_commands_get_the_drills_values_and_their_output_is_masked(
    spec: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-value-123")
    secrets = SecretStore(spec)
    secrets.masker.add("s3cret-value-123")
    script = "import os,sys; print(sys.argv[1], os.environ['DEPLAT_DRILL_TOKEN'], os.environ['SHOP_TOKEN'])"
    run = datacheck.run_command(
        "check",
        [sys.executable, "-c", script, "{url}/x"],
        spec,
        {"url": "http://h:1", "token": "t0k"},
        secrets,
        10,
    )
    assert run.ok and run.exit_code == 0
    assert "http://h:1/x t0k" in run.output and "s3cret-value-123" not in run.output


def test_a_command_that_hangs_fails_after_its_timeout(spec: Spec) -> None:
    run = datacheck.run_command(
        "check", [sys.executable, "-c", "import time; time.sleep(30)"], spec, {}, SecretStore(spec), 0.3
    )
    assert not run.ok and run.exit_code is None and "did not finish" in run.output
    assert run.seconds < 5
