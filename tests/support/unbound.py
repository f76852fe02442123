"""A caching resolver on loopback, for measuring what users behind one see: Debian's ``unbound``
with a stub zone pointing at a test BIND. It honours the records' TTL as users' resolvers do.

    with start_unbound(tmp_path / "unbound", zone="guestbook.test", upstream=(ns.host, ns.port)) as r:
        r.host, r.port            # give these to the drill: --resolver 127.0.0.1:PORT
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.bind import free_port

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


@dataclass
class Unbound:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Unbound:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _conf(directory: Path, host: str, port: int, zone: str, upstream: tuple[str, int]) -> str:
    return f"""server:
  directory: "{directory}"
  chroot: ""
  username: ""
  pidfile: "{directory}/unbound.pid"
  interface: {host}
  port: {port}
  do-ip6: no
  do-daemonize: no
  use-syslog: no
  logfile: "{directory}/unbound.log"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  prefetch: no
  serve-expired: no
  local-zone: "test." nodefault
  domain-insecure: "{zone}"
remote-control:
  control-enable: no
stub-zone:
  name: "{zone}"
  stub-addr: {upstream[0]}@{upstream[1]}
"""


def start_unbound(
    directory: Path, *, zone: str, upstream: tuple[str, int], host: str = "127.0.0.1"
) -> Unbound:
    """Start unbound in the foreground on a free port of ``host``; ready when it answers ``zone``."""
    import dns.message
    import dns.query

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    conf = directory / "unbound.conf"
    conf.write_text(_conf(directory, host, port, zone, upstream), encoding="utf-8")
    proc = subprocess.Popen(
        [UNBOUND, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    resolver = Unbound(host, port, proc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            answer = dns.query.udp(dns.message.make_query(zone, "SOA"), host, port=port, timeout=0.5)
            if answer.answer:
                return resolver
        except Exception:
            time.sleep(0.05)
    resolver.stop()
    log = (
        (directory / "unbound.log").read_text(errors="replace")
        if (directory / "unbound.log").exists()
        else ""
    )
    raise RuntimeError(f"unbound did not answer {zone} on {host}:{port}:\n{log[-2000:]}")
