"""A "cloud site's VM" on loopback for tests: a real sshd on the site's own loopback address, the
bootstrap's paths moved into a folder (``Layout``), and the FAKE systemctl (``fake_systemctl.py``)
running each service as a real process (a static HTTP server over its data volume), so the health
checks deplat runs on the VM are real.

    with cloud_vm(tmp_path / "vm-a", "127.0.0.21", key.public_line, spec) as vm:
        vm.layout, vm.endpoint, vm.outputs   # for deplat.remote / the driver
        vm.volume("web")                     # the service's data volume folder
        vm.calls()                           # systemctl calls seen, in order
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deplat.remote import Endpoint, Layout
from deplat.spec.model import Spec
from tests.support import fake_systemctl
from tests.support.sshd import SshServer, sshd

FAKE_SYSTEMCTL = Path(fake_systemctl.__file__)


@dataclass
class Vm:
    root: Path
    address: str
    server: SshServer
    layout: Layout
    ports: dict[str, int]  # the port each service answers on

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.server.host, self.server.port, self.server.user)

    @property
    def outputs(self) -> dict[str, Any]:
        """What the site's stack outputs would say: its address and SSH port."""
        return {"ipv4": [self.address], "ssh_port": self.server.port}

    @property
    def systemd(self) -> Path:
        return self.root / "systemd"

    def volume(self, service: str, volume: str = "data") -> Path:
        return Path(self.layout.service_data(service)) / volume

    def calls(self) -> list[str]:
        log = self.systemd / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def masked(self) -> list[str]:
        return sorted(p.name for p in (self.systemd / "masked").glob("*"))

    def timers_on(self) -> list[str]:
        enabled = {p.name for p in (self.systemd / "enabled").glob("*")}
        return sorted(enabled - set(self.masked()))

    def start(self, *services: str) -> None:
        """Start services as the site's boot would, and wait until each takes connections."""
        for name in services:
            assert fake_systemctl.main([str(self.systemd), "start", f"deplat-{name}.service"]) == 0
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection((self.address, self.ports[name]), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{name} did not start on {self.address}"
                    time.sleep(0.05)


@contextmanager
def cloud_vm(root: Path, address: str, authorized: str, spec: Spec) -> Iterator[Vm]:
    """A VM at ``address`` (sshd authorizing ``authorized``); each service of ``spec`` with a health
    port serves its first volume's folder over HTTP on that port. Every process is stopped at the end."""
    layout = Layout(
        data_dir=str(root / "srv" / "deplat"),
        config_dir=str(root / "etc" / "deplat"),
        restic_dir=str(root / "etc" / "deplat" / "restic"),
        systemctl=(sys.executable, str(FAKE_SYSTEMCTL), str(root / "systemd")),
        service_host=address,
    )
    units = root / "systemd" / "units"
    units.mkdir(parents=True)
    ports: dict[str, int] = {}
    for name, svc in spec.services.items():
        port = ports[name] = svc.health.port if svc.health else svc.ports[0].port
        folder = Path(layout.service_data(name)) / (svc.volumes[0].name if svc.volumes else "")
        argv = [sys.executable, "-m", "http.server", "--bind", address, str(port), "--directory", str(folder)]
        (units / f"{layout.unit(name)}.json").write_text(json.dumps({"argv": argv}))
    try:
        with sshd(root / "sshd", [authorized], host=address) as server:
            yield Vm(root, address, server, layout, ports)
    finally:
        fake_systemctl.stop_all(root / "systemd")
