"""A real Caddy (Debian's ``/usr/bin/caddy``) on loopback, with the Caddyfile a cloud site gets.

    with start_caddy(tmp_path / "caddy", spec, tls_dir) as web:
        web.https_port      # where the app's names are served (SNI), on 127.0.0.1
        web.systemctl       # a FAKE systemctl for the site's Layout (see below)

The Caddyfile is ``stacks/bootstrap.py``'s, with what a test must change: the folder of deplat's
certificate (``tls_dir``) and, in the global block, the admin address, the HTTP/HTTPS ports and the
storage folder (no root ports, nothing under the real home). Caddy's own files go under the test's
folder (``XDG_*``); ``skip_install_trust`` in the rendered file keeps it off this machine's trust store.

``systemctl``: a FAKE (the boundary is systemd on a cloud VM, which nothing here runs): a script
that logs its arguments and, for ``reload-or-restart caddy.service``, runs a REAL ``caddy reload
--force`` against this Caddy, as Debian's ``caddy.service`` ``ExecReload`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deplat.spec.model import Spec
from deplat.stacks.bootstrap import _caddyfile
from tests.support.bind import free_port
from tests.support.pebble import stop_process

CADDY = shutil.which("caddy") or "/usr/bin/caddy"

FAKE_SYSTEMCTL = """#!/bin/sh
# FAKE systemctl (boundary: systemd on a cloud VM). Logs its arguments; reloads the test's real Caddy.
echo "$*" >> {log}
if [ "$1 $2" = "reload-or-restart caddy.service" ]; then
    exec {caddy} reload --config {config} --adapter caddyfile --address {admin} --force
fi
echo "fake systemctl: $* is not part of this test" >&2
exit 1
"""


@dataclass
class Caddy:
    folder: Path
    config: Path
    admin: str
    https_port: int
    http_port: int
    systemctl: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def systemctl_calls(self) -> list[str]:
        log = self.folder / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []

    def log(self) -> str:
        return (self.folder / "caddy.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> Caddy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(web: Caddy, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if web.process is not None and web.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{web.admin}/config/", timeout=0.5) as answer:
                if json.load(answer):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start_caddy(folder: Path, spec: Spec, tls_dir: Path) -> Caddy:
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(folder),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_DATA_HOME": str(folder / "data"),
    }
    last = ""
    for _ in range(3):  # a port may be taken between choosing and binding it
        admin, http_port, https_port = f"127.0.0.1:{free_port()}", free_port(), free_port()
        config = folder / "Caddyfile"
        options = [
            f"admin {admin}",
            f"http_port {http_port}",
            f"https_port {https_port}",
            f"storage file_system {folder / 'storage'}",
        ]
        config.write_text(_caddyfile(spec, tls_dir=str(tls_dir), global_options=options), encoding="utf-8")
        systemctl = folder / "systemctl"
        systemctl.write_text(
            FAKE_SYSTEMCTL.format(log=folder / "systemctl.log", caddy=CADDY, config=config, admin=admin)
        )
        systemctl.chmod(0o755)
        log = (folder / "caddy.log").open("wb")
        proc = subprocess.Popen(
            [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
        log.close()
        web = Caddy(folder, config, admin, https_port, http_port, systemctl, proc)
        if _ready(web, time.monotonic() + 10):
            return web
        web.stop()
        last = web.log()[-2000:]
    raise RuntimeError(f"caddy did not start in {folder}:\n{last}")
