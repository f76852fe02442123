"""Secrets at rest under ``.deplat``: sealed with a key derived from the state passphrase.

scrypt (n=2**15, r=8, p=1; a fresh 16-byte salt per seal) turns the passphrase into a 256-bit key;
AES-256-GCM encrypts, with the record's purpose as associated data so one sealed blob cannot be
passed off as another. A wrong passphrase or a changed byte fails to open: ``InputError``.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from deplat.errors import InputError

_N, _R, _P = 2**15, 8, 1


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal(plaintext: bytes, passphrase: str, purpose: str) -> dict[str, Any]:
    """``plaintext`` encrypted, as a JSON-ready dict (all values base64 or numbers)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(16), os.urandom(12)
    box = AESGCM(_key(passphrase, salt, _N, _R, _P)).encrypt(nonce, plaintext, purpose.encode())
    return {
        "cipher": "aes-256-gcm",
        "kdf": {"name": "scrypt", "n": _N, "r": _R, "p": _P, "salt": _b64(salt)},
        "nonce": _b64(nonce),
        "ciphertext": _b64(box),
    }


def unseal(sealed: dict[str, Any], passphrase: str, purpose: str, where: str) -> bytes:
    """The plaintext of ``seal``'s output; ``where`` names the file in the error message."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        kdf = sealed["kdf"]
        key = _key(passphrase, base64.b64decode(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        return AESGCM(key).decrypt(
            base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), purpose.encode()
        )
    except InvalidTag:
        raise InputError(
            f"cannot open {where}: wrong state passphrase, or the file was changed",
            hint="use the passphrase the certificate was stored with, or remove the file to obtain a new one",
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{where} is damaged ({type(exc).__name__}); remove it to obtain a new one"
        ) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
