"""A throwaway plug-in module (a hosting provider, a DNS provider kind) seen by a fresh interpreter.

The module is written to a temporary folder that the child appends to the package's ``__path__``
before it runs the test's code, so that registries and the spec's enums (built when the spec model
is first imported) see it; no file of deplat is touched. The code gets the module's folder as
``sys.argv[1]`` and the test's own arguments after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# The app every throwaway-module spec deploys; a test adds its sites (and DNS providers).
APP = """
version: 1
app: shop
services:
  web:
    image: ghcr.io/acme/web:1
    ports: [{port: 8080, public: true}]
domain: {zone: shop.example.org, names: [shop.example.org]}
"""

_PROLOGUE = "import importlib, sys\nimportlib.import_module({package!r}).__path__.append(sys.argv[1])\n"


def run_with_module(
    folder: Path, package: str, module: str, source: str, code: str, *args: str | Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` as ``folder/<module>.py`` and run ``code`` in a fresh interpreter that sees it
    in ``package``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-c", _PROLOGUE.format(package=package) + code, str(folder), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seen_with_module(
    folder: Path, package: str, module: str, source: str, code: str, *args: str | Path
) -> dict[str, Any]:
    """``run_with_module`` for code that prints one JSON document: that document."""
    run = run_with_module(folder, package, module, source, code, *args)
    assert run.returncode == 0, run.stderr
    seen: dict[str, Any] = json.loads(run.stdout)
    return seen
