"""Secret values: looked up by name at run time, never stored in the spec, and masked on output.

Where a value comes from, first hit wins: the process environment, then the spec's
``secrets_file`` (``NAME=value`` lines). ``Masker`` replaces every known secret value in text that
is about to be shown, logged or written to a journal or state file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import InputError
from deplat.files import read_small_file

if TYPE_CHECKING:
    from deplat.spec.model import Spec

MASK = "********"


# A secrets file holds a few lines; a bigger one is a wrong path (or hostile) and is refused unread.
MAX_SECRETS_BYTES = 256 * 1024


def read_secrets_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; blank lines and ``#`` comments are skipped; quotes are stripped.

    Only a regular file is read (a FIFO or a device is refused, never waited on), of at most
    ``MAX_SECRETS_BYTES``; a missing file holds no values."""
    values: dict[str, str] = {}
    try:
        raw = read_small_file(path, MAX_SECRETS_BYTES, f"secrets file {path}")
    except FileNotFoundError:
        return values
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"secrets file {path}: not UTF-8 text (at byte {exc.start})") from None
    for number, text in enumerate(lines, 1):
        line = text.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise InputError(f"{path}:{number}: expected NAME=value (the value is not shown)")
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def secret_names(spec: Spec) -> list[str]:
    """Every secret name the spec refers to: services' secrets and credentials' ``secret``."""
    names: list[str] = []
    for svc in spec.services.values():
        names += svc.secrets
    credentials = [s.credentials for s in spec.sites] + [d.credentials for d in spec.dns]
    names += [c.secret for c in credentials if c.secret]
    for dns in spec.dns:
        for key, value in dns.options.items():
            if key.endswith("secret") and isinstance(value, str):
                names.append(value)
    if spec.state.passphrase.env:
        names.append(spec.state.passphrase.env)
    if spec.backups.repositories:
        names.append(spec.backups.password)
    for repo in spec.backups.repositories:
        names += [n for n in (repo.access_key, repo.secret_key) if n]
    return list(dict.fromkeys(names))


class SecretStore:
    """Looks secret values up by name and remembers each one it handed out, to mask it later."""

    def __init__(
        self,
        spec: Spec | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        secrets_file: Path | None = None,
    ) -> None:
        """The spec's ``secrets_file`` is read, or ``secrets_file`` (already resolved) without one."""
        self._environ = os.environ if environ is None else environ
        self._file: dict[str, str] = {}
        self._file_path: Path | None = secrets_file
        if spec is not None and spec.secrets_file:
            from deplat.spec.filepaths import resolve

            self._file_path = resolve(spec, spec.secrets_file)
        if self._file_path is not None:
            self._file = read_secrets_file(self._file_path)
        self.masker = Masker()

    @property
    def file_path(self) -> Path | None:
        """The spec's ``secrets_file`` (absolute), when it names one."""
        return self._file_path

    def get(self, name: str) -> str | None:
        value = self._environ.get(name) or self._file.get(name)
        if value:
            self.masker.add(value)
        return value or None

    def require(self, name: str, purpose: str) -> str:
        value = self.get(name)
        if value is None:
            where = f" or in {self._file_path}" if self._file_path else ""
            raise InputError(
                f"secret {name} ({purpose}) is not set",
                hint=f"export {name}=...{where}; its value is never written to the spec",
            )
        return value


class Masker:
    """Replaces known secret values in text and in nested data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = {v for v in values if v}

    def add(self, value: str) -> None:
        if value and len(value) >= 4:  # masking 1-3 characters would mangle ordinary text
            self._values.add(value)

    def text(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def data(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {k: self.data(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        return obj
