"""The wheel holds every module of deplat, with providers/ and stacks/ under the deplat namespace.

Guards the setuptools trap where a subpackage missing from `packages` silently vanishes.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"deplat": "deplat", "providers": "deplat/providers", "stacks": "deplat/stacks"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("deplat-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


@pytest.mark.slow
def test_wheel_contains_every_source_module_under_the_deplat_namespace(wheel_names: set[str]) -> None:
    expected = {
        f"{target}/{path.relative_to(ROOT / source).as_posix()}"
        for source, target in SOURCES.items()
        for path in (ROOT / source).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected, "found no sources"
    assert sorted(expected - wheel_names) == []


def test_wheel_has_no_bare_providers_or_stacks_packages(wheel_names: set[str]) -> None:
    assert not [n for n in wheel_names if n.split("/")[0] in ("providers", "stacks", "tests", "examples")]


def test_wheel_ships_starter_templates_and_console_script(wheel: Path, wheel_names: set[str]) -> None:
    assert {"deplat/templates/local.yaml", "deplat/templates/cloud.yaml", "deplat/py.typed"} <= wheel_names
    (entry,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as zf:
        lines = zf.read(entry).decode().split()
    assert "[console_scripts]" in lines
    assert lines[lines.index("[console_scripts]") + 1 : lines.index("[console_scripts]") + 4] == [
        "deplat",
        "=",
        "deplat.cli:main",
    ]


def test_provider_modules_are_one_object_whatever_the_import_path() -> None:
    import deplat.providers.local as via_namespace

    assert sys.modules["deplat.providers.local"] is via_namespace
    assert "providers.local" not in sys.modules
