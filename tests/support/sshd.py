"""A real OpenSSH server on loopback for tests: its own host key, one authorized key, key-only."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")

CONFIG = """\
Port {port}
ListenAddress {host}
HostKey {host_key}
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel VERBOSE
"""


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    host_key_pub: str  # "ssh-ed25519 AAAA..."
    dir: Path


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_host_key(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", str(path)], check=True
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@contextmanager
def sshd(
    directory: Path,
    authorized: list[str],
    *,
    port: int | None = None,
    host_key: Path | None = None,
    host: str = "127.0.0.1",
) -> Iterator[SshServer]:
    """Run sshd on ``host`` (a loopback address) as the current user, who must be root for sshd to
    accept logins of the current user with privilege separation, until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    key = host_key or directory / "host_ed25519"
    pub = (
        make_host_key(key) if not key.exists() else " ".join(key.with_suffix(".pub").read_text().split()[:2])
    )
    authorized_keys = directory / "authorized_keys"
    authorized_keys.write_text("".join(line.strip() + "\n" for line in authorized))
    port = port or _free_port(host)
    config = directory / "sshd_config"
    config.write_text(
        CONFIG.format(host=host, port=port, host_key=key, dir=directory, authorized_keys=authorized_keys)
    )
    log = (directory / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"sshd did not start: {(directory / 'sshd.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        import pwd

        yield SshServer(host, port, pwd.getpwuid(os.getuid()).pw_name, pub, directory)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
