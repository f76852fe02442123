"""FAKES of the tools a cloud VM runs under systemd: ``systemctl``, ``docker``, ``journalctl``.

systemd cannot run as PID 1 on this machine, and no container runtime is installed, so the config
push, ``deplat logs`` and ``deplat exec`` of a cloud site are tested against a real sshd whose
``Layout`` points into a temp folder and whose tools are these scripts (the boundary: systemd and
Docker on a cloud VM). Each FAKE appends its argv (tab-separated) to ``calls.log``; ``systemctl``
then runs the FAKE systemctl of ``fake_systemctl.py`` (state under ``ROOT/systemd``), which starts
each unit that ``fake_vm(root, units=...)`` defines as a REAL process (and refuses the others, as
systemd refuses a unit it does not know: ``FakeVm.stop_all`` at the test's end); ``journalctl``
prints canned journal lines (``-f``: one more every 0.2 s until killed); ``docker exec CONTAINER
CMD...`` runs CMD on this machine, so its output and exit code are real; ``docker pull`` of an image
whose name holds ``missing`` fails like a registry that does not have it.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deplat.remote import Layout
from tests.support import fake_systemctl

_RECORD = """\
#!/bin/sh
{ printf '%s' "${0##*/}"; for a in "$@"; do printf '\\t%s' "$a"; done; echo; } >> LOG
"""

SYSTEMCTL = _RECORD + 'exec PYTHON FAKE_SYSTEMCTL STATE "$@"\n'

DOCKER = (
    _RECORD
    + """\
case "$1" in
pull)
    case "$2" in *missing*) echo "Error response from daemon: manifest for $2 not found" >&2; exit 1;; esac
    echo "$2: Pulled";;
exec)
    shift 2
    exec "$@";;
esac
"""
)

JOURNALCTL = (
    _RECORD
    + """\
follow=0 units=""
while [ $# -gt 0 ]; do
    case "$1" in
    -f) follow=1;;
    -u) shift; units="$units $1";;
    esac
    shift
done
for u in $units; do
    echo "2025-01-01T00:00:00+0000 vm ${u%.service}[42]: canned line 1 of $u"
    echo "2025-01-01T00:00:01+0000 vm ${u%.service}[42]: canned line 2 of $u"
done
if [ "$follow" = 1 ]; then
    i=3
    while :; do
        sleep 0.2
        echo "2025-01-01T00:00:0$((i % 10))+0000 vm follow[42]: followed line $i"
        i=$((i + 1))
    done
fi
"""
)


@dataclass
class FakeVm:
    """A VM's folders under ``root`` and FAKE tools recording into ``root/calls.log``."""

    root: Path
    layout: Layout

    @property
    def log(self) -> Path:
        return self.root / "calls.log"

    def calls(self, tool: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        found = [line.split("\t") for line in self.log.read_text().splitlines()]
        return [c for c in found if tool is None or c[0] == tool]

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)

    def path(self, on_vm: str) -> Path:
        """A path as the bootstrap names it (``/etc/deplat/web.env``), in this fake VM."""
        return self.root / on_vm.lstrip("/")

    @property
    def systemd(self) -> Path:
        return self.root / "systemd"

    def pid(self, unit: str) -> int | None:
        """The pid of the process the FAKE systemctl runs for ``unit`` (None: not running)."""
        return fake_systemctl._pid(self.systemd, unit)

    def systemctl(self, *args: str) -> int:
        """Run the FAKE systemctl here (as the VM's boot would; not recorded in ``calls``)."""
        return fake_systemctl.main([str(self.systemd), *args])

    def flagged(self, folder: str) -> list[str]:
        """The units the FAKE systemctl holds ``enabled``, ``masked`` or ``active`` (timers)."""
        return sorted(p.name for p in (self.systemd / folder).glob("*"))

    def define(self, unit: str, argv: list[str], **extra: object) -> None:
        """What ``unit`` runs (a real process); ``stop_fails="..."``: stopping it fails."""
        units = self.systemd / "units"
        units.mkdir(parents=True, exist_ok=True)
        (units / f"{unit}.json").write_text(json.dumps({"argv": argv, **extra}))

    def stop_all(self) -> None:
        fake_systemctl.stop_all(self.systemd)


def fake_vm(root: Path, units: Mapping[str, list[str]] | None = None) -> FakeVm:
    """Folders like a cloud VM's under ``root`` and the FAKE tools; its ``layout`` for ``open_site``.
    ``units``: unit name -> the argv of the real process the FAKE systemctl runs for it (call
    ``stop_all`` when done)."""
    root.mkdir(parents=True, exist_ok=True)
    bin_dir = root / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    log = root / "calls.log"
    places = {
        "LOG": str(log),
        "PYTHON": sys.executable,
        "FAKE_SYSTEMCTL": fake_systemctl.__file__,
        "STATE": str(root / "systemd"),
    }
    for name, text in (("systemctl", SYSTEMCTL), ("docker", DOCKER), ("journalctl", JOURNALCTL)):
        for word, value in places.items():
            text = text.replace(word, shlex.quote(value))
        script = bin_dir / name
        script.write_text(text)
        script.chmod(0o755)
    layout = Layout(
        data_dir=str(root / "srv/deplat"),
        config_dir=str(root / "etc/deplat"),
        restic_dir=str(root / "etc/deplat/restic"),
        unit_dir=str(root / "etc/systemd/system"),
        caddy_dir=str(root / "etc/caddy"),
        sbin_dir=str(root / "usr/local/sbin"),
        tls_dir=str(root / "etc/deplat/tls"),
        systemctl=(str(bin_dir / "systemctl"),),
        journalctl=(str(bin_dir / "journalctl"),),
        docker=(str(bin_dir / "docker"),),
    )
    vm = FakeVm(root, layout)
    for unit, argv in (units or {}).items():
        vm.define(unit, argv)
    return vm
