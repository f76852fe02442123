"""Services removed from the spec leave the cloud sites they ran on (``deplat up``'s config push).

deplat is declarative: the spec says what runs. A service that runs on a VM (its unit
``deplat-<name>.service`` is in the unit folder; not the data volume's unit, not a template) but is
no longer in the spec is taken off the site, after the rest of the push:

1. its backup timer, when it has one (``deplat-backup@<name>.timer``: its unit ``Wants=`` it, or the
   timer is enabled or masked on the site; ``deplat.remote.services.timer``): unmasked, then
   disabled and stopped (``systemctl disable --now``), so no backup of it runs again;
2. the service disabled and stopped (``systemctl disable --now``: its container exits, ``--rm``
   removes it);
3. its env file (``/etc/deplat/<name>.env``, which holds its secrets), its pre-backup script
   (``/etc/deplat/restic/pre-<name>``) and its unit file removed (the unit last: while it is there,
   the next push sees the service and tries again);

then one ``systemctl daemon-reload``. Caddy is reloaded by the push itself: the pushed Caddyfile no
longer routes to the service.

Its DATA stays on the volume (``/srv/deplat/<name>``): only ``deplat destroy --purge-data`` deletes
data. Each removal says so (``Removed.message``): "removed service old-api (stopped; its data kept
at /srv/deplat/old-api)". A service that cannot be stopped keeps its files (the next ``up`` tries
again) and fails the site (``NotRemoved``); the site's other removed services go all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import OperationFailed
from deplat.events import Emit, Event, EventKind
from deplat.remote.services import timer
from deplat.stacks.vm_layout import BACKUP_CONF, CONFIG_DIR, DATA_DIR, UNIT_DIR

if TYPE_CHECKING:
    from deplat.remote.connect import Layout
    from deplat.spec.model import Spec
    from deplat.transport.base import Completed

DATA_UNIT = "deplat-data.service"
UNIT_PREFIX, UNIT_SUFFIX = "deplat-", ".service"

# One line per service named after the two folders: "TIMER DATA", each 1 (it has one) or 0.
PROBE_SCRIPT = (
    'units=$1 data=$2; shift 2; for n in "$@"; do t="deplat-backup@$n.timer"; '
    'if grep -qsF -- "$t" "$units/deplat-$n.service" || [ -e "$units/$t" ] || [ -L "$units/$t" ] '
    '|| ls -d -- "$units"/*.wants/"$t" >/dev/null 2>&1; then printf 1; else printf 0; fi; '
    'if [ -d "$data/$n" ]; then echo " 1"; else echo " 0"; fi; done'
)

# Removes the files named (never a folder) and prints the ones that were there.
REMOVE_SCRIPT = (
    'for f in "$@"; do if [ -f "$f" ] || [ -L "$f" ]; then rm -f -- "$f" || exit 1; echo "$f"; fi; done'
)


@dataclass
class Removed:
    """A service taken off a site (paths as on a real VM)."""

    service: str
    data: str | None = None  # its data folder, kept on the volume; None: it had none
    timer: str | None = None  # its backup timer, disabled and stopped
    files: list[str] = field(default_factory=list)  # unit, env file, pre-backup script

    @property
    def message(self) -> str:
        kept = f"; its data kept at {self.data}" if self.data else ""
        return f"removed service {self.service} (stopped{kept})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"message": self.message}


@dataclass
class NotRemoved:
    """A service that should have left a site but could not be stopped (its files are kept)."""

    service: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stale_services(units: Iterable[str], spec: Spec) -> list[str]:
    """The services whose units are in the site's unit folder (``units``: file names) but not in
    the spec: not the data volume's unit, not a template or an instance (``@``)."""
    return sorted(
        name[len(UNIT_PREFIX) : -len(UNIT_SUFFIX)]
        for name in units
        if name.startswith(UNIT_PREFIX)
        and name.endswith(UNIT_SUFFIX)
        and "@" not in name
        and name != DATA_UNIT
        and name[len(UNIT_PREFIX) : -len(UNIT_SUFFIX)] not in spec.services
    )


def remove_services(
    site: str,
    layout: Layout,
    names: Sequence[str],
    run: Callable[..., Completed],
    emit: Emit,
) -> tuple[list[Removed], list[NotRemoved]]:
    """Take ``names`` off the site (see the module docstring). ``run(argv, timeout=...)`` runs a
    command on the site and raises ``OperationFailed`` when it fails: that service is then not
    removed (its failure is returned) and the next one is tried. Never touches a data folder."""
    if not names:
        return [], []
    probe = run(
        ["sh", "-c", PROBE_SCRIPT, "sh", layout.unit_dir, layout.data_dir, *names]
    ).stdout.splitlines()
    if len(probe) != len(names):
        raise OperationFailed(f"cannot read what the removed services left on the site ({probe!r})")
    removed: list[Removed] = []
    failed: list[NotRemoved] = []
    for name, line in zip(names, probe, strict=True):
        has_timer, has_data = (flag == "1" for flag in line.split())
        files = {  # the unit last: while it is there, the next push sees the service and tries again
            layout.env_file(name): f"{CONFIG_DIR}/{name}.env",
            f"{layout.restic_dir}/pre-{name}": f"{BACKUP_CONF}/pre-{name}",
            f"{layout.unit_dir}/{layout.unit(name)}": f"{UNIT_DIR}/{layout.unit(name)}",
        }
        try:
            if has_timer:
                run([*layout.systemctl, "unmask", timer(name)])
                run([*layout.systemctl, "disable", "--now", timer(name)])
            run([*layout.systemctl, "disable", "--now", layout.unit(name)], timeout=900)
            gone = run(["sh", "-c", REMOVE_SCRIPT, "sh", *files])
        except OperationFailed as exc:
            failed.append(NotRemoved(name, exc.message))
            note = f"config: could not remove service {name} (no longer in the spec): {exc.message}"
            emit(Event(EventKind.SITE_OP, note, site=site, data={"op": "remove", "service": name}))
            continue
        done = Removed(
            name,
            data=f"{DATA_DIR}/{name}" if has_data else None,
            timer=timer(name) if has_timer else None,
            files=[files[path] for path in gone.stdout.splitlines() if path in files],
        )
        removed.append(done)
        data = {"op": "remove", "service": name, "data_kept": done.data}
        emit(Event(EventKind.SITE_OP, f"config: {done.message}", site=site, data=data))
    if removed:
        run([*layout.systemctl, "daemon-reload"])
    return removed, failed
