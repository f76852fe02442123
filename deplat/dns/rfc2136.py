"""``rfc2136``: a self-run authoritative server (BIND, Knot, PowerDNS) over TSIG-signed updates.

The most deplatforming-proof DNS: you can run such nameservers on every provider. Reads are
(signed) queries to that server, never to a resolver; a write is ONE update message for all names,
so it applies atomically, and with compare-and-swap its prerequisites name the exact RRsets read
just before ("RRset exists, value dependent", or "RRset does not exist"): if anything changed
since, the server answers NXRRSET/YXRRSET and applies nothing.

Options: ``server`` (host name or IP), ``port`` (53), ``key_name``, ``key_secret`` (the NAME of
the secret holding the base64 TSIG key), ``key_algorithm`` (hmac-sha256), ``timeout`` (seconds
per request, default 2).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import TYPE_CHECKING, Any

from deplat.dns.base import (
    RECORD_TYPES,
    CasConflict,
    Change,
    Deadline,
    DnsBackend,
    DnsError,
    Served,
    check_known,
    check_timeout,
    option_float,
    quote_txt,
)

if TYPE_CHECKING:
    from deplat.dns.zone import AppZone, DnsEntry
    from deplat.spec.model import DnsProvider, Spec

OPTIONS = ("server", "port", "key_name", "key_secret", "key_algorithm", "timeout")
ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")
_SECRET_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_-]{1,63})*\.?$"
)


def validate_options(provider: DnsProvider, spec: Spec) -> list[tuple[tuple[Any, ...], str]]:
    options = provider.options
    problems = check_known(options, OPTIONS, "rfc2136")
    server = options.get("server")
    if server is None:
        problems.append((("options",), "an rfc2136 DNS provider needs options.server (host name or IP)"))
    elif not isinstance(server, str) or not (_is_ip(server) or _HOST.match(server)):
        problems.append((("options", "server"), f"'{server}' is not a host name or IP address"))
    port = options.get("port", 53)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append((("options", "port"), "port must be a whole number from 1 to 65535"))
    key_name, key_secret = options.get("key_name"), options.get("key_secret")
    if key_name is None:
        problems.append(
            (("options",), "an rfc2136 DNS provider needs options.key_name (the TSIG key's name)")
        )
    elif not isinstance(key_name, str) or not key_name.strip():
        problems.append((("options", "key_name"), "key_name must be the TSIG key's name"))
    if key_secret is None:
        problems.append(
            (("options",), "an rfc2136 DNS provider needs options.key_secret (the NAME of a secret)")
        )
    elif not isinstance(key_secret, str) or not _SECRET_NAME.match(key_secret):
        problems.append(
            (
                ("options", "key_secret"),
                "key_secret is the NAME of the secret holding the TSIG key (e.g. DNS_TSIG_SECRET), "
                "not the key itself",
            )
        )
    algorithm = options.get("key_algorithm", "hmac-sha256")
    if not isinstance(algorithm, str) or algorithm.lower().rstrip(".") not in ALGORITHMS:
        problems.append(
            (("options", "key_algorithm"), f"key_algorithm must be one of {', '.join(ALGORITHMS)}")
        )
    problems += check_timeout(options)
    return problems


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Backend(DnsBackend):
    kind = "rfc2136"
    server_side_cas = True

    def __init__(self, provider: DnsEntry, app: AppZone, secrets: Any) -> None:
        super().__init__(provider, app, secrets)
        self.server = str(self.options.get("server", ""))
        self.port = int(self.options.get("port", 53))
        self.request_timeout = option_float(self.options, "timeout", 2.0)
        self._address: str | None = None
        self._keyring: Any = None
        self._algorithm: Any = None

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.server}:{self.port}"

    def _server_address(self) -> str:
        """The server's IP. A host name is looked up once (the nameserver's own address; the
        app's names are only ever asked of the server itself)."""
        if self._address is None:
            if _is_ip(self.server):
                self._address = self.server
            else:
                try:
                    info = socket.getaddrinfo(self.server, self.port, proto=socket.IPPROTO_UDP)
                except OSError as exc:
                    raise DnsError(f"cannot find the address of {self.server}: {exc}", "transient") from exc
                self._address = str(info[0][4][0])
        return self._address

    def _key(self) -> tuple[Any, Any]:
        if self._keyring is None:
            import dns.name
            import dns.tsigkeyring

            key_name = str(self.options.get("key_name", ""))
            secret_name = str(self.options.get("key_secret", ""))
            secret = self.secrets.require(secret_name, f"TSIG key of DNS provider {self.name}")
            algorithm = str(self.options.get("key_algorithm", "hmac-sha256")).lower().rstrip(".")
            try:
                self._keyring = dns.tsigkeyring.from_text({key_name: (algorithm, secret)})
            except Exception as exc:  # bad base64 and the like; never echo the value
                raise DnsError(
                    f"the TSIG key in secret {secret_name} is not valid base64 ({type(exc).__name__})", "auth"
                ) from None
            self._algorithm = dns.name.from_text(algorithm)
        return self._keyring, self._algorithm

    def _exchange(self, message: Any, deadline: Deadline, what: str, tcp: bool) -> Any:
        """Send ``message`` and return the answer; every failure becomes a classified ``DnsError``."""
        import dns.exception
        import dns.query
        import dns.tsig

        deadline.check(what)
        timeout = deadline.timeout(self.request_timeout)
        address = self._server_address()
        where, key = f"{self.where} ({what})", self.options.get("key_name")
        try:
            if tcp:
                return self._tcp(message, address, timeout)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                # connected, so that "port unreachable" shows up as refused instead of a timeout
                sock.connect((address, self.port))
                sock.setblocking(False)
                response = dns.query.udp(message, address, port=self.port, timeout=timeout, sock=sock)
            if response.flags & 0x0200:  # TC: the answer did not fit, ask again over TCP
                deadline.check(what)
                return self._tcp(message, address, deadline.timeout(self.request_timeout))
            return response
        except (dns.exception.Timeout, TimeoutError):
            raise DnsError(f"no answer within {timeout:.2g} s from {where}", "transient") from None
        except ConnectionRefusedError:
            raise DnsError(
                f"nothing listens on {where}: connection refused, server down?", "transient"
            ) from None
        except dns.tsig.PeerBadKey:
            raise DnsError(f"{where}: the server does not know TSIG key '{key}'", "auth") from None
        except (dns.tsig.PeerBadSignature, dns.tsig.BadSignature):
            secret = self.options.get("key_secret")
            raise DnsError(
                f"{where}: the server rejected the TSIG signature: wrong key in secret {secret}", "auth"
            ) from None
        except (dns.tsig.PeerError, dns.tsig.BadTime, dns.tsig.BadAlgorithm, dns.tsig.BadKey) as exc:
            raise DnsError(f"{where}: TSIG failed: {exc}", "auth") from None
        except EOFError:
            raise DnsError(f"{where}: the server closed the connection", "transient") from None
        except OSError as exc:
            raise DnsError(f"cannot reach {where}: {exc.strerror or exc}", "transient") from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"bad answer from {where}: {exc}", "fatal") from None

    def _tcp(self, message: Any, address: str, timeout: float) -> Any:
        """One request over TCP. A signed request whose answer is NOT signed (a server that does
        not know our key, or not ours at all) still yields that answer's rcode, marked unsigned."""
        import dns.exception
        import dns.message

        wire = message.to_wire()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect((address, self.port))
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            length = int.from_bytes(_recv_exactly(sock, 2), "big")
            answer = _recv_exactly(sock, length)
        try:
            return dns.message.from_wire(answer, keyring=message.keyring, request_mac=message.mac)
        except dns.exception.FormError as exc:
            if "requires a TSIG" not in str(exc):
                raise
            unsigned = dns.message.from_wire(answer, keyring=False)
            unsigned.deplat_unsigned = True  # type: ignore[attr-defined]  # read back with getattr
            return unsigned

    def _rcode_error(self, rcode: Any, what: str, unsigned: bool = False) -> DnsError:
        import dns.rcode

        where = f"{self.where} answered {dns.rcode.to_text(rcode)} ({what}{', unsigned' if unsigned else ''})"
        if rcode == dns.rcode.SERVFAIL:
            return DnsError(f"{where}: the server failed to process it", "transient")
        if rcode == dns.rcode.REFUSED:
            return DnsError(
                f"{where}: it does not serve zone {self.zone} to us, or does not let this key update it",
                "forbidden",
            )
        if rcode == dns.rcode.NOTAUTH:
            return DnsError(
                f"{where}: it is not authoritative for zone {self.zone}, or did not accept the TSIG key",
                "auth",
            )
        if rcode == dns.rcode.NOTZONE:
            return DnsError(f"{where}: a name is outside zone {self.zone}", "fatal")
        return DnsError(where, "fatal")

    # -- the interface -----------------------------------------------------------------------

    def read(self, names: list[str], deadline: Deadline) -> dict[str, Served]:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype

        served: dict[str, Served] = {}
        for name in names:
            found: dict[str, list[str]] = {"A": [], "AAAA": []}
            ttls: dict[str, int] = {}
            for rdtype in RECORD_TYPES:
                query = dns.message.make_query(name + ".", rdtype)
                query.flags &= ~dns.flags.RD  # reads are public data: unsigned, like any resolver's
                response = self._exchange(query, deadline, f"query {name} {rdtype}", tcp=False)
                rcode = response.rcode()
                if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    raise self._rcode_error(rcode, f"query {name} {rdtype}")
                if not response.flags & dns.flags.AA:
                    raise DnsError(
                        f"{self.where} is not authoritative for {name} (no AA flag): is zone {self.zone} "
                        "configured there?",
                        "fatal",
                    )
                for rrset in response.answer:
                    if rrset.rdtype == dns.rdatatype.from_text(rdtype) and rrset.name.to_text() == name + ".":
                        found[rdtype] += [r.to_text() for r in rrset]
                        ttls[rdtype] = rrset.ttl
            served[name] = Served(found["A"], found["AAAA"], min(ttls.values(), default=None), ttls)
        return served

    def set_txt(self, name: str, values: list[str], ttl: int, deadline: Deadline) -> None:
        update = self._update()
        update.replace(name + ".", ttl, "TXT", *[quote_txt(v) for v in values])
        self._send_update(update, deadline, f"write TXT {name}")

    def delete_txt(self, name: str, deadline: Deadline) -> None:
        update = self._update()
        update.delete(name + ".", "TXT")
        self._send_update(update, deadline, f"delete TXT {name}")

    def _update(self) -> Any:
        import dns.update

        keyring, algorithm = self._key()
        return dns.update.UpdateMessage(
            self.zone + ".", keyring=keyring, keyname=next(iter(keyring)), keyalgorithm=algorithm
        )

    def _send_update(self, update: Any, deadline: Deadline, what: str) -> None:
        import dns.rcode

        response = self._exchange(update, deadline, what, tcp=True)
        rcode = response.rcode()
        unsigned = getattr(response, "deplat_unsigned", False)
        if unsigned and rcode == dns.rcode.NOERROR:
            raise DnsError(
                f"{self.where} accepted the update without signing its answer: not our server?", "auth"
            )
        if rcode != dns.rcode.NOERROR:
            raise self._rcode_error(rcode, what, unsigned)

    def write(self, changes: list[Change], ttl: int, deadline: Deadline) -> None:
        import dns.rcode
        import dns.rdataset
        import dns.update

        if not changes:
            return
        keyring, algorithm = self._key()
        update = dns.update.UpdateMessage(
            self.zone + ".", keyring=keyring, keyname=next(iter(keyring)), keyalgorithm=algorithm
        )
        for change in changes:
            owner = change.name + "."
            for rdtype in RECORD_TYPES:
                before, after = change.current.values(rdtype), change.new.values(rdtype)
                if change.cas:
                    if before:  # "RRset exists (value dependent)": exactly these values, TTL 0
                        update.present(owner, dns.rdataset.from_text("IN", rdtype, 0, *before))
                    else:  # "RRset does not exist"
                        update.absent(owner, rdtype)
                if after:
                    update.replace(owner, ttl, rdtype, *after)
                elif before or not change.cas:
                    update.delete(owner, rdtype)
        response = self._exchange(update, deadline, "update", tcp=True)
        rcode = response.rcode()
        unsigned = getattr(response, "deplat_unsigned", False)
        if unsigned and rcode == dns.rcode.NOERROR:
            raise DnsError(
                f"{self.where} accepted the update without signing its answer: not our server?", "auth"
            )
        if rcode == dns.rcode.NOERROR:
            return
        conflict = (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN)
        if rcode in conflict and not unsigned:
            raise CasConflict(
                f"{self.where} answered {dns.rcode.to_text(rcode)}: the records changed since they were "
                "read; nothing was written"
            )
        raise self._rcode_error(rcode, "update", unsigned)
