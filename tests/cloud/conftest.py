"""The opt-in real suite (marker ``cloud``): the real ``pulumi`` CLI, and for the site tests a real cloud.

Runs only when DEPLAT_CLOUD_TESTS=1 and a real ``pulumi`` is installed; skipped otherwise, with the
reason. See ``test_real_engine.py`` for what each test needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FAKE_BIN = Path(__file__).resolve().parents[1] / "fakes" / "bin"


def real_pulumi() -> str | None:
    """The real CLI (never the tests' fake), as deplat would find it."""
    from deplat.engine.workspace import find_pulumi

    path = find_pulumi()
    if path is None or Path(path).parent == FAKE_BIN:
        return None
    try:
        done = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if done.returncode == 0 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if not mine:
        return
    reason = None
    if os.environ.get("DEPLAT_CLOUD_TESTS") != "1":
        reason = "real-cloud suite: set DEPLAT_CLOUD_TESTS=1 to run it (needs the pulumi CLI and credentials)"
    elif real_pulumi() is None:
        reason = "real-cloud suite: the pulumi CLI is not installed (deplat doctor --install-pulumi)"
    for item in mine:
        item.add_marker(pytest.mark.cloud)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def pulumi_path() -> str:
    path = real_pulumi()
    assert path is not None
    if shutil.which("pulumi") is None:
        pytest.skip("put the pulumi CLI on PATH")
    return path
