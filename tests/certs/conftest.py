"""Fixtures for the certificate tests: a real BIND and a real pebble on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.engine import passphrase
from tests.support.bind import Bind, bind_server  # noqa: F401  (pytest fixture)
from tests.support.pebble import Pebble, start_pebble


@pytest.fixture
def pebble(tmp_path: Path, bind_server: Bind) -> Iterator[Pebble]:  # noqa: F811
    ca = start_pebble(tmp_path / "pebble", bind_server)
    try:
        yield ca
    finally:
        ca.stop()


@pytest.fixture(autouse=True)
def _fresh_passphrase() -> Iterator[None]:
    passphrase.forget()
    yield
    passphrase.forget()
