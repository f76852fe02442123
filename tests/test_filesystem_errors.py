"""A full, read-only or corrupt local state folder is reported as the local file system's problem
(issue 12.12): one message naming the path and the fix, never "internal error" and never "transient
... the provider reported a temporary error".

The disks are real: a 64 KiB tmpfs filled up, and a tmpfs remounted read-only (root can write
through chmod, not through a read-only mount). Without the right to mount, those tests skip.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.cli.app import filesystem_cause
from deplat.errors import FilesystemError

ROOT = Path(__file__).resolve().parents[1]
GUESTBOOK = ROOT / "examples/guestbook"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(disk))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the guestbook example (its spec and app)."""
    folder = tmp_path / "project"
    shutil.copytree(GUESTBOOK, folder)
    return folder


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_corrupt_active_set_is_named_with_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / ".deplat").mkdir(mode=0o700)
    active = project / ".deplat/active.json"
    for corrupt in ('{"primary": ', '["local-a"]'):
        active.write_text(corrupt)
        assert run(["--json", "-f", str(project / "deplat.yaml"), "status"]) == 2
        doc = json.loads(capsys.readouterr().out)
        assert doc["error"].startswith(f"{active} is ")
        assert doc["hint"].startswith(f"move {active} aside")


def test_a_read_only_state_folder_is_the_disks_fault_not_the_providers(
    project: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = project / ".deplat"
    state.symlink_to(small_disk)
    _mount("-o", "remount,ro", str(small_disk))
    spec = str(project / "deplat.yaml")

    assert run(["--json", "-f", spec, "up", "--yes"]) == 1  # each site fails on its own
    doc = json.loads(capsys.readouterr().out)
    failed = [r for r in doc["sites"] if not r["ok"]]
    assert failed and {r["error_class"] for r in failed} == {"filesystem"}
    assert all("read-only file system" in r["error"].lower() for r in failed)

    assert run(["--json", "-f", spec, "failover", "--to", "local-b", "--yes"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "read-only file system" in doc["error"] and "internal error" not in doc["error"]
    assert doc["hint"].startswith("remount it read-write")


def test_an_oserror_escaping_any_command_becomes_one_filesystem_message(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(small_disk)
    out = small_disk / "schema.json"
    assert run(["--no-color", "schema", "-o", str(out)]) == 2  # its write is not guarded: the handler is
    err = " ".join(capsys.readouterr().err.split())
    assert "a local disk failed: No space left on device" in err and "free some space" in err
    assert "internal error" not in err

    os.unlink(small_disk / "filler")
    _mount("-o", "remount,ro", str(small_disk))
    assert run(["--no-color", "schema", "-o", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{out} is on a read-only file system" in err and "internal error" not in err


def test_only_file_system_errors_are_mapped_and_causes_are_followed() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/x/journal")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("journal write failed") from exc
    except RuntimeError as wrapped:
        mapped = filesystem_cause(wrapped)
    assert (
        isinstance(mapped, FilesystemError)
        and mapped.message == "no space left on the disk holding /x/journal"
    )
    assert filesystem_cause(OSError(errno.ECONNREFUSED, "Connection refused")) is None
    assert filesystem_cause(PermissionError(errno.EACCES, "Permission denied")) is None  # a port, not a file
    denied = filesystem_cause(PermissionError(errno.EACCES, "Permission denied", "/srv/x"))
    assert denied is not None and denied.message == "permission denied on /srv/x"
