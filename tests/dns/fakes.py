"""Fakes at the network boundary for the DNS tests: a DNS server that answers a chosen rcode (or
never answers), and a tiny spec builder. Everything binds to 127.0.0.1 on a free port."""

from __future__ import annotations

import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from deplat.spec.model import Spec


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.owner.reply(data)  # type: ignore[attr-defined]
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (length,) = struct.unpack("!H", head)
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        reply = self.server.owner.reply(data)  # type: ignore[attr-defined]
        if reply is None:
            self.server.owner.silent.wait(5)  # type: ignore[attr-defined]
            return
        self.request.sendall(struct.pack("!H", len(reply)) + reply)


class _ThreadingUdp(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingTcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeDns:
    """Answers every query with ``rcode`` (e.g. "SERVFAIL"; "NOERROR": an empty authoritative answer)
    and every update with ``update_rcode`` (default: ``rcode``); ``None`` never answers."""

    def __init__(
        self, rcode: str | None, authoritative: bool = True, update_rcode: str | None = "same"
    ) -> None:
        self.rcode = rcode
        self.update_rcode = rcode if update_rcode == "same" else update_rcode
        self.authoritative = authoritative
        self.silent = threading.Event()
        self.requests = 0
        self.tcp = _ThreadingTcp(("127.0.0.1", 0), _Tcp)
        self.port = self.tcp.server_address[1]
        self.udp = _ThreadingUdp(("127.0.0.1", self.port), _Udp)
        self.tcp.owner = self.udp.owner = self  # type: ignore[attr-defined]
        self.threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for s in (self.tcp, self.udp)
        ]

    def reply(self, wire: bytes) -> bytes | None:
        import dns.flags
        import dns.message
        import dns.opcode
        import dns.rcode

        self.requests += 1
        # parse without checking TSIG: this fake knows no keys, like a server that is not ours
        message = dns.message.from_wire(wire, ignore_trailing=True, keyring=False)
        rcode = self.update_rcode if message.opcode() == dns.opcode.UPDATE else self.rcode
        if rcode is None:
            return None
        response = dns.message.make_response(message)
        response.set_rcode(dns.rcode.from_text(rcode))
        if self.authoritative:
            response.flags |= dns.flags.AA
        return response.to_wire()

    def start(self) -> FakeDns:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.silent.set()
        for s in (self.tcp, self.udp):
            s.shutdown()
            s.server_close()

    def dns_entry(self, name: str, **options: Any) -> dict[str, Any]:
        opts = {
            "server": "127.0.0.1",
            "port": self.port,
            "key_name": "deplat",
            "key_secret": "FAKE_TSIG_SECRET",
            "timeout": 0.5,
        }
        opts.update(options)
        return {"name": name, "provider": "rfc2136", "options": opts}


@contextmanager
def fake_dns(
    rcode: str | None, authoritative: bool = True, update_rcode: str | None = "same"
) -> Iterator[FakeDns]:
    server = FakeDns(rcode, authoritative, update_rcode).start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A loopback port with nothing listening (TCP and UDP): a server that is down."""
    from tests.support.bind import free_port

    return free_port()


FAKE_SECRET = "c2VjcmV0LXRoYXQtaXMtbm90LWtub3duLXRvLWFueW9uZQ=="  # base64, for FAKE_TSIG_SECRET


def spec_with(
    dns: list[dict[str, Any]],
    tmp_path: Path | None = None,
    ttl: int = 60,
    names: list[str] | None = None,
    zone: str = "guestbook.test",
) -> Spec:
    """A small valid spec (three local sites) whose ``dns:`` is ``dns``; written to tmp_path/deplat.yaml
    when given, so that the CLI can load it."""
    doc: dict[str, Any] = {
        "version": 1,
        "app": "guestbook",
        "services": {
            "web": {
                "image": "guestbook:1",
                "ports": [{"port": 18080, "public": True}],
                "local": {"command": ["python3", "-m", "http.server", "{port}", "--bind", "{host}"]},
            }
        },
        "domain": {"zone": zone, "names": names or [zone, f"www.{zone}"], "ttl": ttl},
        "sites": [
            {"name": "local-a", "provider": "local", "role": "primary", "options": {"address": "127.0.0.11"}},
            {"name": "local-b", "provider": "local", "role": "warm", "options": {"address": "127.0.0.12"}},
        ],
        "dns": dns,
    }
    if tmp_path is not None:
        path = tmp_path / "deplat.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        from deplat.spec import load_spec

        return load_spec(path)
    return Spec.model_validate(doc)
