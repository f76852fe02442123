"""Everything deplat keeps under `.deplat/` is owner-only (issue 12.2): after `up`, a `failover` and
a short `watch` on the guestbook's local sites, every file is 0600 or stricter and every folder
0700. Journals, backups, archives, the watch log and the sites' logs and data all live there, and
may name secrets or hold the app's data."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from deplat.cli import run
from tests.support.local_sites import GUESTBOOK, free_addresses, free_port, guestbook_data

pytestmark = pytest.mark.slow


def wide(path: Path) -> bool:
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return mode != 0o700
    if stat.S_ISLNK(info.st_mode):
        return False  # a link's own mode means nothing; what it points at is walked if inside
    return bool(mode & 0o077)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    shutil.copy(GUESTBOOK / "app.py", tmp_path / "app.py")
    addresses = free_addresses(3)
    data = guestbook_data(3, free_port(addresses), addresses)
    data["services"]["web"]["local"]["cwd"] = "."
    spec = tmp_path / "deplat.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        yield spec
    finally:
        run(["-f", str(spec), "destroy", "--yes"])


def test_every_file_under_deplat_is_owner_only_after_up_failover_and_watch(project: Path) -> None:
    spec = str(project)
    assert run(["-f", spec, "up", "--yes"]) == 0
    assert run(["-f", spec, "failover", "--to", "local-b", "--yes"]) == 0
    assert run(["-f", spec, "watch", "--for", "2"]) == 0

    home = project.parent / ".deplat"
    walked = [home, *home.rglob("*")]
    assert len(walked) > 10  # journals, backups, archives, logs, sites' data: the walk saw them
    too_wide = {str(p.relative_to(home)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in walked if wide(p)}
    assert too_wide == {}
