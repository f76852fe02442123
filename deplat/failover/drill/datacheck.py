"""The drill's data check, the same for every app.

1. Fingerprints: before the suspension, every file of every stateful service's data on the primary
   is hashed (sha256 and size); after the failover the new primary must hold every file with the
   same content, or, for a file that grew since (an append-only log), the old content as its
   prefix. Nothing of the app is written or read over the network for this.
2. The app's own commands, when its spec declares them (``drill.write`` before the suspension,
   ``drill.check`` after the failover): the drill never writes into an app unless asked to.

The data is reached through the backup interface (``deplat.failover.backup.service_data_dir``),
the same folders the backups copy and the restore fills.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.failover.drill.outcome import CommandRun, DataCheck, ServiceData

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

CHUNK = 1 << 20
OUTPUT_TAIL = 800  # characters of a command's output kept in the report


@dataclass(frozen=True)
class FileMark:
    sha256: str
    size: int


Fingerprint = dict[str, dict[str, FileMark]]  # service -> relative path -> mark


def _data_dir(spec: Spec, site: str, service: str) -> Path:
    from deplat.failover.backup import service_data_dir

    return service_data_dir(spec, site, service)


def _digest(path: Path, limit: int | None = None) -> str:
    """sha256 of ``path`` (of its first ``limit`` bytes when given)."""
    h = hashlib.sha256()
    left = limit
    with path.open("rb") as f:
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def fingerprint_dir(directory: Path) -> dict[str, FileMark]:
    """sha256 and size of every regular file under ``directory`` (relative POSIX paths)."""
    out: dict[str, FileMark] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(directory).as_posix()] = FileMark(_digest(path), path.stat().st_size)
    return out


def stateful_services(spec: Spec) -> list[str]:
    return [name for name, svc in spec.services.items() if svc.stateful]


def fingerprint(spec: Spec, site: str) -> Fingerprint:
    """Every stateful service's data on ``site``."""
    return {name: fingerprint_dir(_data_dir(spec, site, name)) for name in stateful_services(spec)}


def compare(spec: Spec, before: Fingerprint, site: str) -> list[ServiceData]:
    """Each service's files of ``before`` as found on ``site``."""
    out = []
    for service, files in before.items():
        folder = _data_dir(spec, site, service)
        result = ServiceData(service, files=len(files), bytes=sum(m.size for m in files.values()))
        for rel, mark in files.items():
            path = folder / rel
            if not path.is_file():
                result.missing.append(rel)
                continue
            size = path.stat().st_size
            if size == mark.size and _digest(path) == mark.sha256:
                result.same += 1
            elif size > mark.size and _digest(path, mark.size) == mark.sha256:
                result.grown += 1
            else:
                result.changed.append(rel)
        out.append(result)
    return out


# --- the app's own commands ------------------------------------------------------------------


def run_command(
    name: str,
    argv: list[str],
    spec: Spec,
    values: Mapping[str, str],
    secrets: SecretStore,
    timeout: float,
) -> CommandRun:
    """Run one declared command in the spec's folder; ``{url}``, ``{host}``, ``{token}`` in its
    arguments are replaced and the same values exported as ``DEPLAT_DRILL_<NAME>``."""
    args = [_fill(arg, values) for arg in argv]
    env = {**os.environ, **{f"DEPLAT_DRILL_{k.upper()}": v for k, v in values.items()}}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            cwd=spec.base_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        code: int | None = proc.returncode
        output = (proc.stdout + proc.stderr).strip()
    except subprocess.TimeoutExpired:
        code, output = None, f"did not finish in {timeout:g} s"
    except OSError as exc:
        code, output = None, f"could not run it: {exc.strerror or exc}"
    return CommandRun(
        name,
        [secrets.masker.text(a) for a in args],
        code,
        round(time.monotonic() - started, 3),
        secrets.masker.text(output[-OUTPUT_TAIL:]),
    )


def _fill(arg: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def verdict(services: list[ServiceData], commands: list[CommandRun], note: str = "") -> DataCheck:
    return DataCheck(
        ok=all(s.ok for s in services) and all(c.ok for c in commands),
        services=services,
        commands=commands,
        note=note,
    )
