"""Fixtures for local sites: the guestbook copied into tmp_path on free loopback addresses and ports.

Every site a test stands up is destroyed by the fixture's finalizer, and any process the state
files named that is still alive afterwards is killed, so a failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deplat.local import sitestate
from tests.support.local_sites import GUESTBOOK, Guestbook, free_addresses, free_port, guestbook_data


@pytest.fixture
def make_guestbook(tmp_path: Path) -> Iterator[Callable[..., Guestbook]]:
    """``make_guestbook(sites=1, edit=None, environ=None)``: a guestbook copy ready to stand up."""
    made: list[Guestbook] = []

    def make(
        sites: int = 1,
        edit: Callable[[dict[str, Any]], None] | None = None,
        environ: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> Guestbook:
        where = root or tmp_path / f"app{len(made)}"
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(GUESTBOOK / "app.py", where / "app.py")
        addresses = free_addresses(max(sites, 2))
        data = guestbook_data(sites, free_port(addresses), addresses)
        if edit:
            edit(data)
        book = Guestbook(where, data, environ)
        made.append(book)
        return book

    yield make
    for book in made:
        leftovers = book.pids()
        for site in book.sites:
            with contextlib.suppress(Exception):
                book.driver.destroy(site)
        for pid, identity in leftovers + book.pids():
            if sitestate.process_alive(pid, identity):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
