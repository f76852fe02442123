"""Help as a newcomer reads it: flags without a value placeholder, the global options everywhere,
required options marked, examples, shell completion, and a ``version`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deplat import __version__
from deplat.cli import run
from deplat.cli.app import build

ROOT = Path(__file__).resolve().parents[2]


def command_paths(command: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    command = command or build()
    for name, sub in getattr(command, "commands", {}).items():
        yield (*prefix, name)
        yield from command_paths(sub, (*prefix, name))


ALL = sorted(command_paths())
LEAVES = [p for p in ALL if not getattr(build().commands[p[0]], "commands", None) or len(p) > 1]


def help_of(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    assert run([*path, "--help"]) == 0
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_help_shows_no_type_placeholder_and_fits_80_columns(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(path, capsys)
    assert "<bool>" not in text and "<str>" not in text and "<int" not in text and "<float" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_lists_the_global_options_and_examples(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(path, capsys)
    globals_section = text.split("Global options", 1)[1]
    for option in ("--file FILE", "--json", "--verbose", "--no-color"):
        assert option in globals_section, f"{' '.join(path)}: {option} missing"
    assert "Examples:" in text, f"deplat {' '.join(path)}: give it @app.command(epilog=examples(...))"
    examples = text.split("Examples:", 1)[1]
    assert f"deplat {' '.join(path)}" in examples


def test_flags_are_shown_without_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(("up",), capsys)
    assert "-y, --yes      Do not ask" in text


def test_failover_marks_to_as_required(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(("failover",), capsys)
    assert "Usage: deplat failover --to SITE [OPTIONS]" in text
    assert "--to SITE" in text and "[required unless --resume]" in text


def test_root_help_lists_commands_in_a_newcomers_order(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of((), capsys)
    listed = [line.split()[0] for line in text.split("Commands:", 1)[1].splitlines() if line.startswith("  ")]
    assert listed.index("init") < listed.index("validate") < listed.index("up") < listed.index("failover")


def test_version_command_and_option_agree(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version"]) == 0
    assert f"deplat {__version__} (Python " in capsys.readouterr().out
    assert run(["--json", "version"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == __version__
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"deplat {__version__}\n"


@pytest.mark.slow
def test_shell_completion_completes_commands_and_options() -> None:
    env = {**os.environ, "_DEPLAT_COMPLETE": "complete_bash", "COMP_WORDS": "deplat fai", "COMP_CWORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "deplat"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.split() == ["failover"]
    env |= {"COMP_WORDS": "deplat failover --re", "COMP_CWORD": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "deplat"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.split() == ["--resume"]


def test_show_completion_prints_a_script_for_the_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--show-completion", "bash"]) == 0
    assert "_DEPLAT_COMPLETE=complete_bash" in capsys.readouterr().out
