"""The files under ``.deplat/certs``: the app's certificate and the ACME account key.

``certificate.json`` holds, in the clear, what ``deplat certs`` shows (names, issuer, validity,
serial, the ACME directory) and, sealed with the state passphrase, the certificate chain and its
private key. ``account-<hash of the directory URL>.json`` holds the ACME account key, sealed.
Both files are owner-only and written atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deplat.certs.sealed import seal, unseal
from deplat.files import private_dir, read_json, write_json_atomic

CERT_PURPOSE = "deplat certificate"
ACCOUNT_PURPOSE = "deplat acme account"


@dataclass(frozen=True)
class CertInfo:
    """What anyone may know about a certificate (nothing secret)."""

    names: list[str]
    issuer: str
    not_before: datetime
    not_after: datetime
    serial: str
    directory: str

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["not_before"] = self.not_before.isoformat()
        data["not_after"] = self.not_after.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CertInfo:
        return cls(
            names=list(data["names"]),
            issuer=str(data["issuer"]),
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(data["not_after"]),
            serial=str(data["serial"]),
            directory=str(data["directory"]),
        )

    @classmethod
    def of_pem(cls, fullchain_pem: str, directory: str) -> CertInfo:
        """The leaf (first) certificate of a chain, described."""
        from cryptography import x509

        leaf = x509.load_pem_x509_certificate(fullchain_pem.encode())
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = san.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return cls(
            names=sorted(names),
            issuer=leaf.issuer.rfc4514_string(),
            not_before=leaf.not_valid_before_utc.astimezone(UTC),
            not_after=leaf.not_valid_after_utc.astimezone(UTC),
            serial=format(leaf.serial_number, "x"),
            directory=directory,
        )


class CertStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def certificate_file(self) -> Path:
        return self.folder / "certificate.json"

    def account_file(self, directory: str) -> Path:
        return self.folder / f"account-{hashlib.sha256(directory.encode()).hexdigest()[:16]}.json"

    def info(self) -> CertInfo | None:
        data = read_json(self.certificate_file)
        return CertInfo.from_dict(data["info"]) if data else None

    def save_certificate(self, fullchain_pem: str, key_pem: str, directory: str, passphrase: str) -> CertInfo:
        info = CertInfo.of_pem(fullchain_pem, directory)
        secret = json.dumps({"certificate": fullchain_pem, "key": key_pem}).encode()
        private_dir(self.folder)
        write_json_atomic(
            self.certificate_file,
            {"version": 1, "info": info.to_dict(), "sealed": seal(secret, passphrase, CERT_PURPOSE)},
        )
        return info

    def pem_pair(self, passphrase: str) -> tuple[str, str] | None:
        data = read_json(self.certificate_file)
        if not data:
            return None
        plain = unseal(data["sealed"], passphrase, CERT_PURPOSE, str(self.certificate_file))
        pair = json.loads(plain)
        return str(pair["certificate"]), str(pair["key"])

    def account_key(self, directory: str, passphrase: str) -> str | None:
        """The account key (JWK JSON) for ``directory``; None when there is none yet."""
        path = self.account_file(directory)
        data = read_json(path)
        if not data:
            return None
        return unseal(data["sealed"], passphrase, ACCOUNT_PURPOSE, str(path)).decode()

    def save_account_key(self, directory: str, jwk_json: str, passphrase: str) -> None:
        private_dir(self.folder)
        write_json_atomic(
            self.account_file(directory),
            {
                "version": 1,
                "directory": directory,
                "sealed": seal(jwk_json.encode(), passphrase, ACCOUNT_PURPOSE),
            },
        )
