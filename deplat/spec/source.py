"""Reading a spec file's bytes: only a regular file of at most ``MAX_SPEC_BYTES`` (a FIFO or
``/dev/zero`` is refused before reading), so bad input fails at once with one message. Imports
nothing of the spec model."""

from __future__ import annotations

from pathlib import Path

from deplat.errors import InputError
from deplat.files import read_small_file

# A spec is a few kilobytes; anything near this is a mistake (or hostile) and is refused unread.
MAX_SPEC_BYTES = 1024 * 1024


def read_spec_bytes(file: Path, shown: str) -> bytes:
    """The bytes of the spec ``file`` (``shown`` names it in messages)."""
    try:
        return read_small_file(file, MAX_SPEC_BYTES, shown)
    except FileNotFoundError:
        raise InputError(
            f"{shown}: no such file", hint="create one with `deplat init --local`, or pass -f FILE"
        ) from None
