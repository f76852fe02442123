"""A site's service logs: which files, their last lines, and new lines as they are written.

Local sites keep one log per service under ``.deplat/local/<site>/logs/<service>.log`` (written by
the site's supervisor, secrets masked, rotated to ``<service>.log.1``). Cloud sites' logs live on
their VMs, in the journal, and are read over SSH (``deplat.remote.shell``), never from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.errors import InputError

if TYPE_CHECKING:
    from deplat.spec.model import Spec


@dataclass(frozen=True)
class LogSource:
    site: str
    service: str
    path: Path


def sources(spec: Spec, site: str | None = None, service: str | None = None) -> list[LogSource]:
    """The log files of ``site`` (default: the current primary), one per service (or only
    ``service``); an ``InputError`` names the valid choices or why there are none."""
    from deplat.local import sitestate
    from deplat.paths import ProjectPaths
    from deplat.providers import provider_of
    from deplat.state import load_active

    known = [s.name for s in spec.sites]
    name = site or load_active(spec).primary
    if name not in known:
        raise InputError(f"no site named '{name}'", hint=f"sites: {', '.join(known)}")
    chosen = spec.site(name)
    if not provider_of(chosen).capabilities.runs_locally:
        raise InputError(
            f"logs of {chosen.provider.value} sites ({name}) are in the journal on the site's VM",
            hint=f"deplat logs {name} reads them over SSH (deplat.remote.shell)",
        )
    services = list(spec.services)
    if service is not None and service not in services:
        raise InputError(f"no service named '{service}'", hint=f"services: {', '.join(services)}")
    site_dir = ProjectPaths.of(spec).local_site(name)
    if not sitestate.logs_dir(site_dir).is_dir():
        raise InputError(
            f"site {name} has no logs here: it was never stood up from this folder (or was destroyed)",
            hint=f"deplat up --site {name}",
        )
    return [LogSource(name, s, sitestate.log_path(site_dir, s)) for s in ([service] if service else services)]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def tail(source: LogSource, count: int) -> list[str]:
    """The last ``count`` lines of the log (reaching into the rotated file when needed)."""
    if count <= 0:
        return []
    lines = _lines(source.path)
    if len(lines) < count:
        lines = _lines(source.path.with_name(source.path.name + ".1")) + lines
    return lines[-count:]


def follow(
    chosen: Sequence[LogSource],
    stop: Callable[[], bool] = lambda: False,
    interval: float = 0.2,
) -> Iterator[tuple[LogSource, str]]:
    """Lines written to the logs from now on, as they come, until ``stop()`` says so. A log that is
    rotated (a new file) or truncated is read again from its start."""
    state: dict[Path, tuple[int, int]] = {}  # path -> (inode, offset)
    partial: dict[Path, str] = {}
    for source in chosen:
        try:
            st = source.path.stat()
            state[source.path] = (st.st_ino, st.st_size)
        except FileNotFoundError:
            state[source.path] = (0, 0)
    while not stop():
        quiet = True
        for source in chosen:
            inode, offset = state[source.path]
            try:
                st = source.path.stat()
            except FileNotFoundError:
                continue
            if st.st_ino != inode or st.st_size < offset:
                inode, offset = st.st_ino, 0
            if st.st_size == offset:
                state[source.path] = (inode, offset)
                continue
            with source.path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            state[source.path] = (inode, offset + len(data))
            text = partial.pop(source.path, "") + data.decode("utf-8", "replace")
            *complete, rest = text.split("\n")
            if rest:
                partial[source.path] = rest
            for line in complete:
                quiet = False
                yield source, line
        if quiet:
            time.sleep(interval)


def last_lines(chosen: Sequence[LogSource], count: int) -> list[tuple[LogSource, str]]:
    """The last ``count`` lines of each log, one log after the other."""
    return [(source, line) for source in chosen for line in tail(source, count)]
