"""CLI tests run without a terminal (stdin is empty, so nothing can be asked) and at 80 columns."""

from __future__ import annotations

import io
import sys

import pytest

from tests.local.conftest import make_guestbook  # noqa: F401  (the local sites' fixture, shared)
from tests.support.bind import bind_factory  # noqa: F401  (real BIND servers, a fixture)


@pytest.fixture(autouse=True)
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setenv("COLUMNS", "80")
