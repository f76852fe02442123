"""Where the real ``pulumi`` CLI is for the ``real_engine`` tests, and what to do when it is not there.

Looked for, first hit wins:
1. ``DEPLAT_PULUMI_BIN_DIR``: a directory holding a ``pulumi`` the user brings (their own install);
2. the build cache of ``.ci/build-pulumi.sh``: ``$DEPLAT_ENGINE_CACHE/pulumi-<version>/pulumi``
   (default ``~/.cache/deplat``), the version being the one ``.ci/pulumi/go.mod`` pins;
3. a ``pulumi`` on PATH that is not the tests' fake.

Missing: the tests skip and say why, except when ``DEPLAT_REAL_ENGINE=required`` (``.ci/run`` sets it
after building): then they fail, so that a broken build never turns into quietly skipped tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_BIN = ROOT / "tests" / "fakes" / "bin"
WRAPPER_GO_MOD = ROOT / ".ci" / "pulumi" / "go.mod"
BUILD = ".ci/build-pulumi.sh"

# Nothing the engine does in these tests may leave the machine: a plugin download or an update check
# goes to a closed loopback port instead (Go's HTTP client honours these; loopback is never proxied).
OFFLINE_ENV = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "PULUMI_SKIP_UPDATE_CHECK": "true",
}


def pinned_version() -> str:
    """The CLI version the wrapper module builds (``vX.Y.Z``)."""
    match = re.search(r"github\.com/pulumi/pulumi/pkg/v3 (v\S+)", WRAPPER_GO_MOD.read_text())
    assert match, f"{WRAPPER_GO_MOD} requires no github.com/pulumi/pulumi/pkg/v3"
    return match.group(1)


def cache_root() -> Path:
    return Path(os.environ.get("DEPLAT_ENGINE_CACHE") or Path.home() / ".cache" / "deplat")


def _works(binary: Path) -> str | None:
    """The version a CLI reports, or None when it does not run."""
    try:
        done = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def find_real_pulumi() -> tuple[Path | None, str]:
    """(the directory holding a real ``pulumi``, its version) or (None, why not)."""
    candidates: list[Path] = []
    if os.environ.get("DEPLAT_PULUMI_BIN_DIR"):
        candidates.append(Path(os.environ["DEPLAT_PULUMI_BIN_DIR"]))
    candidates.append(cache_root() / f"pulumi-{pinned_version()}")
    on_path = shutil.which("pulumi")
    if on_path and Path(on_path).resolve().parent != FAKE_BIN:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        binary = folder / "pulumi"
        if binary.is_file():
            version = _works(binary)
            if version:
                return folder, version
    looked = ", ".join(str(c) for c in candidates)
    return (
        None,
        f"no real pulumi CLI (looked in {looked}); build it with `{BUILD}` or set DEPLAT_PULUMI_BIN_DIR",
    )


def required() -> bool:
    return os.environ.get("DEPLAT_REAL_ENGINE") == "required"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; fail instead when the real engine is required (CI after its build)."""
    if required():
        pytest.fail(f"DEPLAT_REAL_ENGINE=required but {reason}", pytrace=False)
    pytest.skip(reason)


def real_pulumi_dir() -> Path:
    folder, why = find_real_pulumi()
    if folder is None:
        skip_or_fail(why)
    assert folder is not None
    return folder
