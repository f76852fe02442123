"""What a short command imports: only what it uses (the structure behind start-up time; the timed
targets are in benchmarks/cli_startup.py and benchmarks/dns_sync_vs_octodns.py).

Each command runs as a fresh ``python`` process that writes ``sys.modules`` when it exits (modules
imported with ``importlib.import_module``, as the registries do, are counted too, which
``python -X importtime`` does not show).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deplat.cli.app import COMMAND_MODULES, build
from tests.support.bind import start_bind

ROOT = Path(__file__).resolve().parents[2]

# Never needed by a local rehearsal's short commands: cloud SDKs, the SSH and HTTP clients, the
# Pulumi engine, the local sites' supervisor, the providers a spec does not name.
HEAVY = (
    "boto3",
    "botocore",
    "pulumi",
    "asyncssh",
    "httpx",
    "deplat.engine",
    "deplat.local.driver",
    "deplat.providers.aws",
    "deplat.providers.gcp",
    "deplat.providers.hcloud",
)

RUNNER = """
import atexit, json, sys
out, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["deplat", *args]
from deplat.cli import main
main()
"""


def modules_of(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, set(json.loads(out.read_text()))


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_running_a_command_imports_only_the_module_that_registers_it(tmp_path: Path) -> None:
    code, modules = modules_of(["dns", "sync", "--help"], tmp_path)

    assert code == 0
    assert {m for m in modules if m.endswith("_cmds")} == {"deplat.cli.dns_cmds"}
    assert not [name for name in (*HEAVY, "deplat.spec", "yaml") if loaded(modules, name)]


def test_help_without_a_command_lists_every_command(tmp_path: Path) -> None:
    code, modules = modules_of(["--help"], tmp_path)

    assert code == 0
    assert {m for m in modules if m.endswith("_cmds")} == {
        f"deplat.cli.{m}" for m in COMMAND_MODULES.values()
    }


def test_command_modules_names_the_module_of_every_command() -> None:
    tree = build()
    for name, command in tree.commands.items():
        if name == "version":  # deplat.cli.app's own
            continue
        leaves = list(getattr(command, "commands", {}).values()) or [command]
        modules = {leaf.callback.__module__ for leaf in leaves}
        assert modules == {f"deplat.cli.{COMMAND_MODULES[name]}"}, name


@pytest.mark.slow
def test_dns_sync_on_a_local_primary_imports_no_cloud_code_and_no_yaml_once_validated(
    tmp_path: Path,
) -> None:
    with start_bind(tmp_path / "bind", records={n: ["127.0.0.99"] for n in NAMES}) as ns:
        check_dns_sync(tmp_path, ns)


NAMES = ["guestbook.test", "www.guestbook.test"]


def check_dns_sync(tmp_path: Path, ns: Any) -> None:
    data = yaml.safe_load((ROOT / "examples/guestbook/deplat.yaml").read_text())
    data["dns"] = [ns.dns_entry("ns-self")]
    project = tmp_path / "project"
    (project / ".deplat").mkdir(parents=True, mode=0o700)  # a project deplat has worked in
    spec = project / "deplat.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))

    first, first_modules = modules_of(["-f", str(spec), "dns", "sync"], tmp_path, ns.secret_env())
    again, again_modules = modules_of(["-f", str(spec), "dns", "sync"], tmp_path, ns.secret_env())

    assert first == again == 0
    assert ns.query("www.guestbook.test") == ["127.0.0.11"]  # the primary local-a's address
    for modules in (first_modules, again_modules):
        assert not [name for name in HEAVY if loaded(modules, name)]
    assert {m for m in first_modules if m.endswith("_cmds")} == {"deplat.cli.dns_cmds"}
    assert loaded(first_modules, "yaml")  # the first run validated the spec
    # the second used what the first kept (deplat.cli.quick): no parser, no Typer, no model
    assert not [
        name for name in ("yaml", "typer", "pydantic", "deplat.spec.model") if loaded(again_modules, name)
    ]
    assert not [m for m in again_modules if m.endswith("_cmds")]
    code, json_modules = modules_of(["-f", str(spec), "--json", "dns", "sync"], tmp_path, ns.secret_env())
    assert code == 0
    assert not loaded(json_modules, "rich")  # a JSON document needs no console
