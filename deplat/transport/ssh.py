"""SSH: a cloud site's commands run over one asyncssh connection, key only, host key checked.

Environment values (secrets among them) are sent inside a small script on the command's stdin
(``sh -s``), never in argv, never in a file on the site and never through ``AcceptEnv``.

The connection lives on a private event loop in a helper thread, so callers stay synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import asyncssh

from deplat.errors import ErrorClass
from deplat.transport.base import (
    CommandTimeout,
    Completed,
    HostKeyMismatch,
    KeyRefused,
    OnLine,
    Transport,
    TransportError,
)
from deplat.transport.keys import AppKey, KnownHosts, host_pattern

T = TypeVar("T")


def env_script(argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> str:
    """The shell script run by ``sh -s``: export ``env``, change to ``cwd``, exec ``argv``."""
    lines = ["set -e"]
    for name, value in env.items():
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"not an environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}")
    if cwd:
        lines.append(f"cd -- {shlex.quote(cwd)}")
    lines.append("exec " + shlex.join(argv))
    return "\n".join(lines) + "\n"


class SshTransport(Transport):
    """Commands on ``user@host:port``, authenticated by the app's key only.

    ``host_key`` pins the site's key (an OpenSSH public key line); without it the first
    connection records the key it sees in ``known_hosts`` and later ones require the same.
    """

    def __init__(
        self,
        host: str,
        key: AppKey,
        known_hosts: KnownHosts,
        *,
        port: int = 22,
        user: str = "root",
        host_key: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.user = host, port, user
        self.key = key
        self.known_hosts = known_hosts
        self.host_key = host_key
        self.connect_timeout = connect_timeout
        self.where = f"{user}@{host_pattern(host, port)}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = threading.Lock()
        self._connecting: asyncio.Lock | None = None  # one connection, however many commands wait

    # --- the private loop ---------------------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name=f"ssh-{self.host}", daemon=True
                )
                self._thread.start()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(None if timeout is None else timeout + self.connect_timeout + 5)
        except FutureTimeout:
            future.cancel()
            raise CommandTimeout(f"on {self.where}: no answer within {timeout:g}s") from None

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if self._conn is not None:
            conn = self._conn
            self._conn = None

            async def shut() -> None:
                conn.close()
                await conn.wait_closed()

            # closing a dead connection may fail any way it likes
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shut(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        loop.close()
        self._loop = self._thread = None
        self._connecting = None  # bound to the loop just closed

    # --- connecting -----------------------------------------------------------------------------

    async def _connect(self) -> asyncssh.SSHClientConnection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._open()
            return self._conn

    async def _open(self) -> asyncssh.SSHClientConnection:
        pinned = asyncssh.import_public_key(self.host_key) if self.host_key else None
        recorded = self.known_hosts.get(self.host, self.port)
        trusted = pinned or recorded
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    self.host,
                    self.port,
                    username=self.user,
                    client_keys=[self.key.private],
                    known_hosts=([trusted], [], []) if trusted else None,
                    agent_path=None,
                    password=None,
                    kbdint_auth=False,
                    preferred_auth="publickey",
                    config=[],  # never the operator's ~/.ssh/config: the site is what deplat says
                ),
                self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyMismatch(
                f"{self.where} presented a different SSH host key than the one "
                f"{'pinned for this site' if pinned else 'recorded on first contact'}: refusing to connect",
                hint=(
                    f"if the site's VM was replaced, remove the line '{host_pattern(self.host, self.port)}' "
                    f"from {self.known_hosts.path}; otherwise someone may be intercepting the connection"
                ),
            ) from None
        except asyncssh.PermissionDenied:
            raise KeyRefused(
                f"{self.where} refused the app's SSH key ({self.key.public_line.split()[-1]})",
                hint="the site must list the app's public key (.deplat/ssh/app_key.pub) in "
                f"~{self.user}/.ssh/authorized_keys: `deplat up` installs it; check the site's ssh_user",
            ) from None
        except TimeoutError:
            raise TransportError(
                f"cannot reach {self.where}: no SSH answer within {self.connect_timeout:g}s",
                hint="is the site up, and port 22 open to this machine (options.ssh_cidrs)?",
                error_class=ErrorClass.TRANSIENT,
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise TransportError(
                f"cannot reach {self.where}: {getattr(exc, 'strerror', None) or exc}",
                hint="is the site up, and port 22 open to this machine (options.ssh_cidrs)?",
                error_class=ErrorClass.TRANSIENT,
            ) from None
        seen = conn.get_server_host_key()
        if trusted is None and seen is not None:
            self.known_hosts.record(self.host, self.port, seen)
        return conn

    # --- commands -------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        on_line: OnLine | None = None,
    ) -> Completed:
        argv = tuple(argv)
        if env and stdin is not None:
            raise ValueError("env travels on stdin: a command cannot have both")
        data: bytes | None
        if env:
            command, data = "sh -s", env_script(argv, env, cwd).encode()
        else:
            command = shlex.join(argv) if not cwd else f"cd -- {shlex.quote(cwd)} && exec {shlex.join(argv)}"
            data = stdin
        return self._submit(self._run(argv, command, data, timeout, on_line), timeout)

    async def _run(
        self,
        argv: tuple[str, ...],
        command: str,
        data: bytes | None,
        timeout: float | None,
        on_line: OnLine | None,
    ) -> Completed:
        conn = await self._connect()
        try:
            process = await conn.create_process(command, encoding=None)
        except asyncssh.Error as exc:
            raise TransportError(
                f"on {self.where}: cannot start {argv[0]}: {exc}", error_class=ErrorClass.TRANSIENT
            ) from None
        out: list[str] = []

        async def feed() -> None:
            if data is not None:
                process.stdin.write(data)
            process.stdin.write_eof()

        async def read_out() -> None:
            async for raw in process.stdout:
                if not raw:  # asyncssh may hand out an empty read at end of stream
                    continue
                line = raw.decode("utf-8", "replace")
                out.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))

        async def finish() -> tuple[bytes, int | None]:
            await feed()
            err_task = asyncio.ensure_future(process.stderr.read())
            await read_out()
            err = await err_task
            completed = await process.wait()
            return err, completed.exit_status

        try:
            err, status = await asyncio.wait_for(finish(), timeout)
        except TimeoutError:
            process.kill()
            process.close()
            raise CommandTimeout(f"on {self.where}: {argv[0]} did not finish within {timeout:g}s") from None
        return Completed(
            argv, status if status is not None else 255, "".join(out), err.decode("utf-8", "replace")
        )

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        """``cat`` into a temp file beside ``path`` (umask 077), chmod, rename: atomic, and the
        content never appears in argv."""
        folder = path.rsplit("/", 1)[0] or "/"
        tmp = f"{path}.deplat-tmp"
        script = (
            f"umask 077 && mkdir -p -- {shlex.quote(folder)} && cat > {shlex.quote(tmp)} && "
            f"chmod {mode:o} -- {shlex.quote(tmp)} && mv -f -- {shlex.quote(tmp)} {shlex.quote(path)}"
        )
        done = self.run(["sh", "-c", script], stdin=data, timeout=60)
        if not done.ok:
            raise TransportError(
                f"on {self.where}: cannot write {path}: {done.describe()}", error_class=ErrorClass.FATAL
            )
