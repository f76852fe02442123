"""The state passphrase: it encrypts every secret in the Pulumi state, and is never stored in plain text.

Where it comes from, first hit wins: the spec's ``state.passphrase.env`` (a secret name), the spec's
``state.passphrase.file``, ``DEPLAT_PASSPHRASE``, ``PULUMI_CONFIG_PASSPHRASE``, then an interactive
prompt when the CLI installed one (``set_prompt``). The value is kept in memory for the process only,
registered with the SecretStore's masker, and handed to the ``pulumi`` CLI in its environment only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.errors import InputError
from deplat.files import read_small_file

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

Prompt = Callable[[str], str]

_lock = threading.Lock()
_prompt: Prompt | None = None
_cache: dict[str, str] = {}


def set_prompt(prompt: Prompt | None) -> None:
    """The CLI installs a prompt (e.g. ``getpass``) when a person is at the terminal."""
    global _prompt
    _prompt = prompt


def forget() -> None:
    """Drop remembered passphrases (tests; long-running processes that re-read the spec)."""
    with _lock:
        _cache.clear()


def _key(spec: Spec) -> str:
    return str(spec.base_dir.resolve()) + "|" + spec.state.backend


def resolve(spec: Spec, secrets: SecretStore) -> str:
    """The passphrase for ``spec``'s state; asks at most once per process (thread-safe)."""
    with _lock:
        key = _key(spec)
        if key in _cache:
            secrets.masker.add(_cache[key])
            return _cache[key]
        value = _lookup(spec, secrets)
        _cache[key] = value
        return value


def source(spec: Spec, secrets: SecretStore) -> str | None:
    """Where the passphrase would come from, without asking: a secret's name, ``file PATH``, or
    ``entered`` (asked earlier in this process); None when only a prompt could supply it."""
    if _key(spec) in _cache:
        return "entered"
    wanted = spec.state.passphrase
    if wanted.env and secrets.get(wanted.env):
        return wanted.env
    if wanted.file:
        path = Path(wanted.file).expanduser()
        return f"file {path if path.is_absolute() else spec.base_dir / path}"
    return next((n for n in ("DEPLAT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE") if secrets.get(n)), None)


def _lookup(spec: Spec, secrets: SecretStore) -> str:
    source = spec.state.passphrase
    if source.env:
        value = secrets.get(source.env)
        if value:
            return value
    if source.file:
        path = Path(source.file).expanduser()
        if not path.is_absolute():
            path = spec.base_dir / path
        try:  # a small regular file only: a FIFO or a device is refused, never waited on
            value = read_small_file(path, 64 * 1024, f"the state passphrase file {path}").decode().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"cannot read the state passphrase file {path}: {getattr(exc, 'strerror', None) or exc}",
                hint="fix state.passphrase.file in the spec, or set DEPLAT_PASSPHRASE",
            ) from None
        if value:
            secrets.masker.add(value)
            return value
    for name in ("DEPLAT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"):
        value = secrets.get(name)
        if value:
            return value
    if _prompt is not None:
        value = _prompt("state passphrase (encrypts secrets in .deplat/state): ")
        if value:
            secrets.masker.add(value)
            return value
    wanted = source.env or "DEPLAT_PASSPHRASE"
    raise InputError(
        "no passphrase for the state of cloud sites",
        hint=f"export {wanted}=... (or set state.passphrase.file in the spec); it is never written to disk",
    )
