"""The one set of durable-file helpers: atomic writes, locks, private folders, pid liveness.

Every part of deplat that keeps state on disk uses these, so that the rules hold everywhere:

- a reader never sees half a file and a crash never leaves one (temp file, fsync, rename, fsync dir);
- files deplat writes are owner-only (0600), folders 0700: ``.deplat/`` holds journals, archives
  and state that may name secrets;
- a folder shared with other users (``/tmp``) is never trusted without checking owner and mode;
- a lock dies with its holder (``flock``), so ``kill -9`` never leaves one stuck;
- a full or read-only disk surfaces as ``FilesystemError`` (one message naming the path and fix).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deplat.errors import FilesystemError, InputError

FILE_MODE = 0o600
DIR_MODE = 0o700


def filesystem_error(exc: OSError, path: Path | str) -> FilesystemError:
    """A ``FilesystemError`` for an OSError seen while writing ``path``, naming the fix."""
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return FilesystemError(f"no space left on the disk holding {path}", hint="free some space and rerun")
    if code == errno.EROFS:
        return FilesystemError(
            f"{path} is on a read-only file system",
            hint="remount it read-write, or move the spec's folder to a writable disk",
        )
    if code in (errno.EACCES, errno.EPERM):
        return FilesystemError(f"permission denied writing {path}", hint="check the folder's owner and mode")
    return FilesystemError(f"cannot write {path}: {exc.strerror or exc}")


# Errors that mean the local file system is full or read-only: never the provider's, never a bug.
_FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def local_filesystem_cause(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, or what caused it) when a local file system is full,
    read-only or refuses a file (permission denied on a named path); None otherwise. So a caller
    that catches broad errors can tell the user to fix the disk rather than retry the provider."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and (
            current.errno in _FULL_OR_READ_ONLY
            or (current.errno in (errno.EACCES, errno.EPERM) and current.filename is not None)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as an owner-only folder; tighten it if it exists and is ours."""
    try:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for folder in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode
            folder.mkdir(exist_ok=True, mode=DIR_MODE)
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(DIR_MODE)
    except OSError as exc:
        raise filesystem_error(exc, path) from exc
    return path


def trusted_dir(path: Path) -> Path:
    """A folder in a place other users can write to (``/tmp``): create it 0700, then refuse it unless
    it is a real directory owned by us with no access for anyone else (another user may have made it
    first, to catch what we put there)."""
    try:
        path.mkdir(mode=DIR_MODE, parents=False, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise filesystem_error(exc, path) from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise FilesystemError(
            f"{path} is not a private folder of this user (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):o}): refusing to use it",
            hint=f"remove {path} if you do not know who made it",
        )
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, mode: int = FILE_MODE, *, durable: bool = True) -> None:
    """Write a temp file beside ``path``, fsync, rename, fsync the folder. On any failure the old
    file (if any) is untouched and no temp file is left; a full or read-only disk raises
    ``FilesystemError``. ``durable=False`` skips both fsyncs (a cache: losing the newest version in
    a crash costs only its rebuilding; readers still never see half a file)."""
    private_dir(path.parent)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        if durable:
            _fsync_dir(path.parent)
    except OSError as exc:
        raise filesystem_error(exc, path) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_text_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), mode)


def write_json_atomic(path: Path, data: Any, mode: int = FILE_MODE) -> None:
    """``data`` as indented JSON, written atomically (see ``write_bytes_atomic``)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    write_bytes_atomic(path, text.encode("utf-8"), mode)


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``; ``default`` when it does not exist. A corrupt file raises
    ``FilesystemError`` naming it (never a bare ValueError deep in a command)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise FilesystemError(
            f"{path} is not valid JSON ({exc})", hint=f"move {path} aside and rerun"
        ) from exc
    except OSError as exc:
        raise filesystem_error(exc, path) from exc


def read_small_file(path: Path, limit: int, shown: str | None = None) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (symlinks followed).

    Input files (a spec, a secrets file) are read through this so that a hostile or mistaken path
    fails at once with one message: a FIFO would block forever and ``/dev/zero`` never ends, so the
    file type is checked on the open descriptor before reading, and at most ``limit + 1`` bytes are
    ever read. ``FileNotFoundError`` is raised as is (callers decide what a missing file means);
    everything else is an ``InputError`` naming ``shown`` (default: the path)."""
    name = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{name}: is {_file_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise InputError(f"{name}: is {info.st_size} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # st_size can lie (/proc, a file still growing): count what is read
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InputError(f"{name}: is more than {limit} bytes, the limit")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((words for test, words in kinds if test(mode)), "not a regular file")


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float | None = None, what: str | None = None) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600 if missing) for the ``with`` block and
    yield its descriptor. ``timeout=None`` waits as long as it takes; otherwise ``TimeoutError``
    (naming ``what``) after ``timeout`` seconds. The kernel releases the lock when the holder dies."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise filesystem_error(exc, path) from exc
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                        raise TimeoutError(f"{what or path} is busy ({path} is locked)") from None
                    time.sleep(0.05)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def process_identity(pid: int) -> str | None:
    """A token that tells this process from a later one with the same pid (its start time in
    clock ticks); ``""`` when alive but unknown; None when no such process runs (a zombie counts as
    gone: it has finished and only waits to be reaped)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return "" if _pid_exists(pid) else None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else ""


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def pid_alive(pid: int | None, identity: str | None = None) -> bool:
    """The one liveness check: is ``pid`` running (not a zombie) and, when ``identity`` (from
    ``process_identity``) is given, still the same process?"""
    if not pid or pid <= 0:
        return False
    now = process_identity(pid)
    if now is None:
        return False
    return not identity or not now or now == identity
