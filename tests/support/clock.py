"""A host whose clock is off, as restic sees it: a ``restic`` on PATH that dates each backup at the
time in ``DEPLAT_TEST_CLOCK`` (restic's own ``--time``) when that is set, and is restic otherwise.
Every other command goes to the real restic unchanged."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CLOCK_ENV = "DEPLAT_TEST_CLOCK"


def shifted_restic(folder: Path) -> Path:
    """Write the wrapper as ``folder/restic``; returns ``folder`` (put it first on PATH)."""
    real = shutil.which("restic")
    assert real is not None, "restic is not installed"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "restic"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'real="{real}"\n'
        f'if [ -n "${{{CLOCK_ENV}:-}}" ]; then\n'
        '    for arg in "$@"; do\n'
        f'        if [ "$arg" = backup ]; then exec "$real" "$@" --time "${CLOCK_ENV}"; fi\n'
        "    done\n"
        "fi\n"
        'exec "$real" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return folder


def clock(offset: float) -> str:
    """The local time ``offset`` seconds from now, as restic's ``--time`` reads it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + offset))
