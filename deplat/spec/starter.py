"""Starter specs written by ``deplat init``: commented, valid, and never over an existing file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deplat.errors import InputError

KINDS = ("local", "cloud")


def starter_text(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown starter '{kind}'; choose one of: {', '.join(KINDS)}")
    return resources.files("deplat").joinpath("templates", f"{kind}.yaml").read_text(encoding="utf-8")


def write_starter(path: Path, kind: str) -> Path:
    """Write the starter; refuse (exit 2) if ``path`` exists, so nothing is ever overwritten."""
    text = starter_text(kind)
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise InputError(
            f"{path}: already exists; deplat init never overwrites a spec",
            hint="pass -f NEWFILE to write elsewhere, or remove the file first",
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    return path
