"""The app's SSH key pair, and the sites' host keys.

One ed25519 key pair per app: the public key goes on every site (cloud-init puts it in
``authorized_keys``), the private key is kept only encrypted: PKCS#8 with a key derived from the
state passphrase (PBES2, AES-256), under ``.deplat/ssh/``, or, when the secret ``DEPLAT_SSH_KEY``
holds a private key, that one and nothing on disk. It is decrypted in memory for a connection;
asyncssh reads it from there, so it never lands in a plain file.

Host keys: a site's key is pinned when known in advance (from the site's outputs) or recorded on
first contact (trust on first use) in ``.deplat/ssh/known_hosts`` (OpenSSH format, so
``ssh -o UserKnownHostsFile=...`` reads it too). A different key later is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncssh

from deplat.errors import InputError
from deplat.files import exclusive_lock, private_dir, write_bytes_atomic

SECRET_NAME = "DEPLAT_SSH_KEY"
KEY_TYPE = "ssh-ed25519"


@dataclass(frozen=True)
class AppKey:
    """The app's key pair, decrypted in memory."""

    private: asyncssh.SSHKey
    public_line: str  # "ssh-ed25519 AAAA... deplat-APP", for authorized_keys

    @classmethod
    def from_private(cls, key: asyncssh.SSHKey, comment: str) -> AppKey:
        public = key.export_public_key("openssh").decode().strip().split()
        return cls(key, f"{public[0]} {public[1]} {comment}")


def generate(app: str) -> AppKey:
    return AppKey.from_private(asyncssh.generate_private_key(KEY_TYPE), f"deplat-{app}")


def encrypt(key: AppKey, passphrase: str) -> bytes:
    return bytes(
        key.private.export_private_key(
            "pkcs8-pem", passphrase=passphrase, cipher_name="aes256-cbc", hash_name="sha256", pbe_version=2
        )
    )


def decrypt(data: bytes, passphrase: str | None, app: str, where: str) -> AppKey:
    try:
        key = asyncssh.import_private_key(data, passphrase)
    except (asyncssh.KeyImportError, ValueError):
        raise InputError(
            f"cannot decrypt the app's SSH key {where}",
            hint="use the state passphrase it was made with (DEPLAT_PASSPHRASE), "
            f"or set the secret {SECRET_NAME} to the private key",
        ) from None
    return AppKey.from_private(key, f"deplat-{app}")


def load_or_create(app: str, private_path: Path, public_path: Path, passphrase: str) -> AppKey:
    """The app's key pair from ``private_path`` (decrypted with ``passphrase``); made and saved,
    encrypted, on first use. Safe against two deplat processes making one at the same moment."""
    private_dir(private_path.parent)
    with exclusive_lock(private_path.with_suffix(".lock"), timeout=30, what="the app's SSH key"):
        if private_path.exists():
            return decrypt(private_path.read_bytes(), passphrase, app, str(private_path))
        key = generate(app)
        write_bytes_atomic(private_path, encrypt(key, passphrase))
        write_bytes_atomic(public_path, (key.public_line + "\n").encode(), mode=0o644)
        return key


def from_secret(value: str, app: str) -> AppKey:
    """The key pair from a secret holding an (unencrypted) OpenSSH or PEM private key."""
    return decrypt(value.encode(), None, app, f"in the secret {SECRET_NAME}")


# --- host keys ----------------------------------------------------------------------------------


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """Recorded host keys, one ``PATTERN TYPE BASE64`` line per site address (OpenSSH format)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        try:
            return [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except FileNotFoundError:
            return []

    def get(self, host: str, port: int) -> asyncssh.SSHKey | None:
        pattern = host_pattern(host, port)
        for line in self._lines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == pattern:
                return asyncssh.import_public_key(f"{fields[1]} {fields[2]}")
        return None

    def record(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        pattern = host_pattern(host, port)
        public = key.export_public_key("openssh").decode().split()
        private_dir(self.path.parent)
        with exclusive_lock(self.path.with_suffix(".lock"), timeout=30, what="known_hosts"):
            lines = [ln for ln in self._lines() if ln.split()[0] != pattern]
            lines.append(f"{pattern} {public[0]} {public[1]}")
            write_bytes_atomic(self.path, ("\n".join(lines) + "\n").encode())

    def forget(self, host: str, port: int) -> None:
        pattern = host_pattern(host, port)
        lines = [ln for ln in self._lines() if ln.split()[0] != pattern]
        if self.path.exists():
            write_bytes_atomic(self.path, ("\n".join(lines) + "\n").encode() if lines else b"")
