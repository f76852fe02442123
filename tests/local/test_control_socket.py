"""The supervisor's control socket never trusts a folder or a listener it does not own (issue 12.1).

A site dir whose path is too long for a Unix socket puts the socket in the runtime folder
(``$XDG_RUNTIME_DIR/deplat``, else ``/tmp/deplat-<uid>``). Another local user who makes that folder
first, or listens there, must get nothing: the services' secret values travel over this socket.
The other user is played by a child process that drops to ``nobody`` (these tests run as root).
"""

from __future__ import annotations

import os
import pwd
import socket
import time
from collections.abc import Callable, Iterator
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from deplat.local import control, sitestate
from tests.support.local_sites import Guestbook

SECRET = "s3cr3t-sent-to-the-wrong-socket"
NOBODY = pwd.getpwnam("nobody").pw_uid

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="playing another user needs root")


def _listen_as_nobody(path: str, received: str, ready: Any) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    received_file = open(received, "ab")  # noqa: SIM115 - opened before the uid drop
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    listener.listen(4)  # the kernel records the listener's credentials now (SO_PEERCRED)
    ready.set()
    listener.settimeout(20)
    with received_file as out:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    out.write(conn.recv(65536))
                    out.flush()
                    conn.sendall(b'{"ok": true, "changes": {}, "services": {}}\n')
                except OSError:
                    pass


@pytest.fixture
def hostile_listener(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``start(socket_path)``: a listener run by ``nobody``; returns the file of what it received."""
    procs = []
    ctx = get_context("fork")

    def start(path: Path) -> Path:
        received = tmp_path / f"received-{len(procs)}"
        received.touch()
        ready = ctx.Event()
        proc = ctx.Process(target=_listen_as_nobody, args=(str(path), str(received), ready), daemon=True)
        proc.start()
        assert ready.wait(10)
        procs.append(proc)
        return received

    yield start
    for proc in procs:
        proc.kill()
        proc.join(5)


def test_a_runtime_folder_open_to_others_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile_listener: Callable[[Path], Path]
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    site_dir = tmp_path / ("a-long-folder-name-" * 6) / ".deplat" / "local" / "site-a"
    path = sitestate.socket_path(site_dir)
    assert path.parent == runtime / "deplat"
    (runtime / "deplat").mkdir()
    os.chmod(runtime / "deplat", 0o777)  # made first, by someone else's rules
    received = hostile_listener(path)

    with pytest.raises(control.ControlError, match="open to other users"):
        control.call(path, {"op": "apply", "services": {"web": {"env": {"TOKEN": SECRET}}}}, timeout=2)
    assert received.read_bytes() == b""


def test_a_socket_served_by_another_user_gets_no_request(
    tmp_path: Path, hostile_listener: Callable[[Path], Path]
) -> None:
    folder = tmp_path / "ours"
    folder.mkdir(mode=0o700)  # our folder: only a peer check can tell who listens
    received = hostile_listener(folder / "supervisor.sock")

    with pytest.raises(control.ControlError, match=f"served by uid {NOBODY}"):
        control.call(folder / "supervisor.sock", {"op": "apply", "env": {"TOKEN": SECRET}}, timeout=2)
    time.sleep(0.2)
    assert received.read_bytes() == b""


@pytest.mark.slow
def test_up_with_a_hostile_runtime_folder_fails_and_sends_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_guestbook: Callable[..., Guestbook],
    hostile_listener: Callable[[Path], Path],
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    def with_secret(data: dict[str, Any]) -> None:
        data["services"]["web"]["secrets"] = ["GB_TOKEN"]

    environ = {"GB_TOKEN": SECRET, "PATH": os.environ["PATH"]}
    book = make_guestbook(edit=with_secret, environ=environ, root=tmp_path / ("deep-" * 20) / "app")
    site = book.spec.site("local-a")
    path = sitestate.socket_path(book.site_dir("local-a"))
    assert path.parent == runtime / "deplat"
    (runtime / "deplat").mkdir()
    os.chown(runtime / "deplat", NOBODY, NOBODY)  # another user made it first, private to them
    received = hostile_listener(path)

    result = book.driver.up(site)

    assert not result.ok
    assert "belongs to uid" in (result.error or "")
    assert SECRET.encode() not in received.read_bytes()
