"""The app's certificate on a cloud site's VM: installed over SSH, then checked from this machine.

What lands in ``Layout.tls_dir`` (``/etc/deplat/tls``, mode 0755):

    fullchain.pem   the certificate chain, 0644
    privkey.pem     its private key, 0600, owned by the web server's user (Caddy runs as ``caddy``
                    under Debian's and Ubuntu's unit: it must read the key, and nobody else may)
    tls.caddy       ``tls <fullchain.pem> <privkey.pem>``, imported by the Caddyfile's site block
                    (``stacks/bootstrap.py`` ``_caddyfile``); until it exists Caddy serves a
                    certificate from its own local CA, never one from a public ACME CA

The key travels on the SSH channel's stdin (``Transport.put``), never in argv, and is never in a
message. Then Caddy is reloaded (``systemctl reload-or-restart caddy.service``: the unit's reload
is ``caddy reload --force``, so Caddy reads the files again although its configuration is the same
text) and a TLS handshake from here, with each app name as SNI, to the address the app's traffic
goes to must show the installed leaf (its SHA-256 fingerprint). The check trusts nothing: it
compares fingerprints, so it works the same for a test CA and a public one.
"""

from __future__ import annotations

import hashlib
import shlex
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from deplat.errors import DeplatError, OperationFailed
from deplat.remote.connect import RemoteSite
from deplat.stacks.vm_layout import TLS_CHAIN, TLS_KEY, TLS_SNIPPET

#: the user the web server runs as (Debian's and Ubuntu's caddy.service: ``User=caddy``)
WEB_USER = "caddy"
WEB_UNIT = "caddy.service"
HTTPS_PORT = 443
COMMAND_SECONDS = 60.0


@dataclass
class SiteCertificate:
    """What a site serves for the app's names after (or instead of) an install."""

    site: str
    address: str  # host:port the handshakes went to
    fingerprint: str  # SHA-256 of deplat's leaf certificate (public)
    installed: bool = False
    #: app name -> "ok" (deplat's certificate), "other certificate <sha256 prefix>", or why no answer
    names: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None

    @property
    def serving(self) -> bool:
        return bool(self.names) and all(v == "ok" for v in self.names.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "serving": self.serving}


def leaf_fingerprint(chain_pem: str) -> str:
    """SHA-256 (hex) of the first certificate of a PEM chain, as a TLS handshake shows it."""
    first = chain_pem[: chain_pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def served_fingerprint(host: str, port: int, name: str, timeout: float = 5.0) -> str:
    """SHA-256 (hex) of the leaf certificate ``host:port`` presents for SNI ``name``. Nothing is
    trusted or verified here: the caller compares fingerprints. ``OSError`` when no handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate for {name}")
    return hashlib.sha256(der).hexdigest()


def check_served(
    host: str, port: int, names: Sequence[str], expected: str, *, wait: float = 0.0, timeout: float = 5.0
) -> dict[str, str]:
    """Per app name: "ok" when ``host:port`` serves the leaf ``expected`` for it, else what it
    serves or why it did not answer. Asks again for up to ``wait`` seconds while any name is not ok."""
    deadline = time.monotonic() + wait
    while True:
        seen: dict[str, str] = {}
        for name in names:
            try:
                got = served_fingerprint(host, port, name, timeout)
            except (OSError, ValueError) as exc:
                seen[name] = f"no TLS answer: {type(exc).__name__}: {exc}"[:200]
                continue
            seen[name] = "ok" if got == expected else f"other certificate {got[:16]}"
        if all(v == "ok" for v in seen.values()) or time.monotonic() >= deadline:
            return seen
        time.sleep(0.2)


def install(remote: RemoteSite, chain_pem: str, key_pem: str, *, owner: str | None = WEB_USER) -> None:
    """Write the chain, the key and Caddy's ``tls`` line into ``remote.layout.tls_dir``, then reload
    Caddy. ``owner``: who may read the key (None: root only). ``OperationFailed`` on any failure."""
    layout, transport = remote.layout, remote.transport
    folder = layout.tls_dir
    chain, key = f"{folder}/{TLS_CHAIN}", f"{folder}/{TLS_KEY}"
    _check(remote, ["install", "-d", "-m", "0755", folder], f"create {folder}")
    transport.put(chain_pem.encode(), chain, mode=0o644)
    transport.put(key_pem.encode(), key, mode=0o600)
    if owner:
        _check(remote, ["chown", f"{owner}:", key], f"give {key} to the web server's user {owner}")
    snippet = f"tls {shlex.quote(chain)} {shlex.quote(key)}\n"
    transport.put(snippet.encode(), f"{folder}/{TLS_SNIPPET}", mode=0o644)
    _check(remote, [*layout.systemctl, "reload-or-restart", WEB_UNIT], "reload the web server (Caddy)")


def install_and_check(
    remote: RemoteSite,
    chain_pem: str,
    key_pem: str,
    https: tuple[str, int],
    names: Sequence[str],
    *,
    owner: str | None = WEB_USER,
    wait: float = 10.0,
) -> SiteCertificate:
    """``install``, then the handshakes: the site serves the chain's leaf for every name, or the
    result says what it serves instead. Install failures are in ``error``, never raised."""
    host, port = https
    result = SiteCertificate(remote.site, f"{host}:{port}", leaf_fingerprint(chain_pem))
    try:
        install(remote, chain_pem, key_pem, owner=owner)
    except DeplatError as exc:
        result.error = exc.message
        return result
    result.installed = True
    result.names = check_served(host, port, names, result.fingerprint, wait=wait)
    if not result.serving:
        result.error = f"installed, but {remote.site} does not serve it for every name"
    return result


def _check(remote: RemoteSite, argv: list[str], what: str) -> None:
    done = remote.transport.run(argv, timeout=COMMAND_SECONDS)
    if not done.ok:
        raise OperationFailed(f"on {remote.site}: cannot {what}: {done.describe()}")
