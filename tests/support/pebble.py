"""Pebble (Let's Encrypt's test ACME server, Debian ``pebble``) on loopback, for the certificate tests.

    with start_pebble(tmp_path / "pebble", dns=bind) as ca:
        ca.directory      # https://127.0.0.1:PORT/dir
        ca.ca_bundle      # PEM of the CA that signed pebble's HTTPS certificate (verify with it)
        ca.root_pem()     # PEM of the root that pebble's issued certificates chain to

Pebble resolves DNS-01 challenges through ``-dnsserver`` = the test BIND, so a challenge passes
only when deplat really wrote the TXT record there. Its HTTPS certificate for 127.0.0.1 is made
here with ``cryptography`` (Debian ships none). ``PEBBLE_VA_NOSLEEP=1`` (no random validation
delay), ``PEBBLE_WFE_NONCEREJECT=0`` (no random bad-nonce answers), ``PEBBLE_AUTHZREUSE=0``
(every order is validated anew, so a test really goes through DNS).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.bind import Bind, free_port

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"


@dataclass
class Pebble:
    directory: str
    ca_bundle: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    management: str = ""  # https://127.0.0.1:PORT: pebble's management interface

    def root_pem(self) -> str:
        """The root certificate of the chains pebble issues (a new one every start)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"{self.management}/roots/0", context=context, timeout=5) as answer:
            return str(answer.read().decode())

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> Pebble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 5 s; nothing when it has ended already."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _https_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for 127.0.0.1 / localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deplat test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _ready(ca: Pebble, deadline: float) -> bool:
    context = ssl.create_default_context(cafile=str(ca.ca_bundle))
    while time.monotonic() < deadline:
        if ca.process is not None and ca.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(ca.directory, context=context, timeout=0.5) as answer:
                json.load(answer)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_pebble(folder: Path, dns: Bind) -> Pebble:
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    ca_pem, cert, key = _https_certificate(folder)
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    last = ""
    for _ in range(3):  # a port may be taken between choosing and binding it
        port, management = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{port}",
                "managementListenAddress": f"127.0.0.1:{management}",
                "certificate": str(cert),
                "privateKey": str(key),
                # http-01 / tls-alpn-01 ports pebble would connect to; unused by DNS-01
                "httpPort": free_port(),
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (folder / "pebble.json").write_text(json.dumps(config), encoding="utf-8")
        log = (folder / "pebble.log").open("wb")
        proc = subprocess.Popen(
            [PEBBLE, "-config", str(folder / "pebble.json"), "-dnsserver", f"{dns.host}:{dns.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
        log.close()
        ca = Pebble(f"https://127.0.0.1:{port}/dir", ca_pem, proc, f"https://127.0.0.1:{management}")
        if _ready(ca, time.monotonic() + 10):
            return ca
        ca.stop()
        last = (folder / "pebble.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"pebble did not start in {folder}:\n{last}")
