"""A real BIND (``named``) on loopback, for tests and benchmarks: one zone, one TSIG key.

Use it as a context manager, a plain object, or the ``bind_server`` pytest fixture::

    from tests.support.bind import bind_server, start_bind   # noqa: F401 (the fixture)

    def test_something(bind_server):          # a fresh named per test, stopped afterwards
        bind_server.query("www.guestbook.test", "A")          # -> ["127.0.0.11"]

    with start_bind(tmp_path, records={"guestbook.test": ["127.0.0.11"]}) as ns:
        entry = ns.dns_entry("ns-a")         # the spec's ``dns:`` entry for this server
        env = ns.secret_env()                # {"DNS_TSIG_SECRET": "<base64>"} for a SecretStore

``start_bind(directory, zone=..., records=..., key_name=..., secret_name=...)`` writes named.conf,
the zone file and a fresh random TSIG key (hmac-sha256) into ``directory``, starts ``named -g`` on
a free port of 127.0.0.1 (UDP and TCP), waits until it answers the zone's SOA (at most 10 s) and
returns a ``Bind``: ``host``, ``port``, ``zone``, ``key_name``, ``key_secret``, ``key_algorithm``,
``secret_name``, ``pid``; ``dns_entry(name)``, ``secret_env()``, ``query(name, rdtype)``,
``freeze()`` / ``thaw()`` (SIGSTOP / SIGCONT: a server that never answers), ``stop()`` (SIGTERM,
then SIGKILL after 5 s; idempotent). ``records`` maps a name to the addresses it starts with
(IPv4 and IPv6 mixed). ``allow_update=False``: the key is known but may not update the zone
(BIND answers updates REFUSED). The zone's own NS ``ns1.<zone>`` has an A record 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NAMED = shutil.which("named") or "/usr/sbin/named"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for UDP and TCP on loopback")


@dataclass
class Bind:
    host: str
    port: int
    zone: str
    key_name: str
    key_secret: str
    directory: Path
    secret_name: str = "DNS_TSIG_SECRET"
    key_algorithm: str = "hmac-sha256"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def dns_entry(self, name: str = "ns-self", **options: Any) -> dict[str, Any]:
        """The spec's ``dns:`` entry that points deplat at this server (extra options override)."""
        opts: dict[str, Any] = {
            "server": self.host,
            "port": self.port,
            "key_name": self.key_name,
            "key_secret": self.secret_name,
            "key_algorithm": self.key_algorithm,
            "timeout": 1.0,
        }
        opts.update(options)
        return {"name": name, "provider": "rfc2136", "options": opts}

    def secret_env(self) -> dict[str, str]:
        """The environment a ``SecretStore`` needs to find this server's TSIG key."""
        return {self.secret_name: self.key_secret}

    def query(self, name: str, rdtype: str = "A", timeout: float = 2.0) -> list[str]:
        """What the server answers now (sorted addresses; empty for no data or NXDOMAIN)."""
        import dns.message
        import dns.query
        import dns.rdatatype

        request = dns.message.make_query(name.rstrip(".") + ".", dns.rdatatype.from_text(rdtype))
        response = dns.query.udp(request, self.host, port=self.port, timeout=timeout)
        found: list[str] = []
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                found += [r.to_text() for r in rrset]
        return sorted(found)

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a frozen named cannot handle SIGTERM
            proc.terminate()
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> Bind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _zone_text(zone: str, records: dict[str, list[str]]) -> str:
    lines = [
        "$TTL 60",
        f"@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 60",
        f"@ IN NS ns1.{zone}.",
        "ns1 IN A 127.0.0.1",
    ]
    for name, addresses in records.items():
        owner = name.rstrip(".") + "."
        for address in addresses:
            lines.append(f"{owner} 60 IN {'AAAA' if ':' in address else 'A'} {address}")
    return "\n".join(lines) + "\n"


def _named_conf(
    directory: Path, host: str, port: int, zone: str, key_name: str, secret: str, allow_update: bool
) -> str:
    grantee = key_name if allow_update else "someone-else"
    return f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {port} {{ {host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
key "{key_name}" {{ algorithm hmac-sha256; secret "{secret}"; }};
key "someone-else" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{zone}" {{
    type primary;
    file "{zone}.zone";
    update-policy {{ grant {grantee} zonesub ANY; }};
}};
"""


def _wait_ready(ns: Bind, deadline: float) -> bool:
    import dns.exception
    import dns.message
    import dns.query

    while time.monotonic() < deadline:
        if ns.process is not None and ns.process.poll() is not None:
            return False
        try:
            dns.query.udp(dns.message.make_query(ns.zone + ".", "SOA"), ns.host, port=ns.port, timeout=0.2)
            return True
        except (dns.exception.Timeout, OSError):
            time.sleep(0.02)
    return False


def start_bind(
    directory: Path,
    *,
    zone: str = "guestbook.test",
    records: dict[str, list[str]] | None = None,
    key_name: str = "deplat",
    secret_name: str = "DNS_TSIG_SECRET",
    host: str = "127.0.0.1",
    allow_update: bool = True,
) -> Bind:
    """Start a fresh named in ``directory`` (created if needed); see the module docstring."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (directory / f"{zone}.zone").write_text(_zone_text(zone, records or {}), encoding="utf-8")
    last_log = ""
    for _ in range(3):  # the port may be taken between choosing and binding it: retry
        port = free_port(host)
        conf = directory / "named.conf"
        conf.write_text(
            _named_conf(directory, host, port, zone, key_name, secret, allow_update), encoding="utf-8"
        )
        log = (directory / "named.log").open("wb")
        proc = subprocess.Popen(
            [NAMED, "-g", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, cwd=directory
        )
        log.close()
        ns = Bind(host, port, zone, key_name, secret, directory, secret_name=secret_name, process=proc)
        if _wait_ready(ns, time.monotonic() + 10):
            return ns
        ns.stop()
        last_log = (directory / "named.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"named did not start in {directory}:\n{last_log}")


@pytest.fixture
def bind_server(tmp_path: Path) -> Iterator[Bind]:
    """A fresh BIND for one test (zone ``guestbook.test``, no app records yet), stopped afterwards."""
    ns = start_bind(tmp_path / "bind")
    try:
        yield ns
    finally:
        ns.stop()


@pytest.fixture
def bind_factory(tmp_path: Path) -> Iterator[Any]:
    """``bind_factory(**start_bind_kwargs)`` starts as many BINDs as a test needs; all are stopped.

    Each gets its own key and, unless given, its own secret name: DNS_TSIG_SECRET for the first,
    DNS_TSIG_SECRET_1, DNS_TSIG_SECRET_2, ... for the next ones."""
    started: list[Bind] = []

    def make(**kwargs: Any) -> Bind:
        n = len(started)
        kwargs.setdefault("secret_name", "DNS_TSIG_SECRET" if n == 0 else f"DNS_TSIG_SECRET_{n}")
        ns = start_bind(tmp_path / f"bind{len(started)}", **kwargs)
        started.append(ns)
        return ns

    try:
        yield make
    finally:
        for ns in started:
            ns.stop()
