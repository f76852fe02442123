"""Configuration changes reach a running cloud site over SSH (``deplat up``, after Pulumi's part).

A cloud site's bootstrap runs once, at first boot (its user data is first-boot only), so a changed
env value, image tag, secret, port or backup setting would never reach a running VM. After Pulumi's
part of ``deplat up``, each cloud site that runs gets the files its bootstrap would write today
(``stacks/bootstrap.vm_files``, the same renderer, never a copy of it) for its current role:

1. one command hashes the site's copies (``sha256sum`` and the mode, one line per file: nothing
   else about them leaves the site, no secret in argv or output);
2. only files whose content or mode differ are written (``Transport.put``: through stdin into a
   temp file, renamed into place; env files 0600);
3. ``systemctl daemon-reload`` when a unit changed; ``docker pull`` of the image of each service
   whose unit changed (before its restart: the old container keeps serving while it downloads);
   ``systemctl enable`` of services new on the site; one ``systemctl restart`` of exactly the
   services whose env file or unit changed; ``reload-or-restart caddy`` when the Caddyfile changed;
   ``try-restart`` of the backup timers when their template changed;
4. services that run on the site but are no longer in the spec are stopped and disabled, with
   their backup timers, and their unit and env files removed (``deplat.remote.removal``); their
   DATA stays on the volume (``removed``: "removed service old-api (stopped; its data kept at
   /srv/deplat/old-api)"; only ``deplat destroy --purge-data`` deletes data).

Nothing changed: nothing written, nothing restarted. The data volume's unit and mount script are
left alone (they carry the provider's device path and never change). A site whose VM this ``up``
created or replaced is skipped: its first boot writes the same files; so is a site without
``options.ssh_cidrs`` (its port 22 is closed to everyone), with a note saying how to reach it.

The outcome per site is a ``Pushed`` (in the ``up`` result under ``config``, and a
``config.push`` event); a site that cannot be reached, or where a service no longer in the spec
cannot be stopped (``not_removed``), fails that site only (exit 1), the others proceed.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import DeplatError, ErrorClass, InputError, OperationFailed
from deplat.events import Emit, Event, EventKind, discard
from deplat.remote.removal import NotRemoved, Removed, remove_services, stale_services
from deplat.stacks.vm_layout import BACKUP_CONF, CONFIG_DIR, UNIT_DIR

if TYPE_CHECKING:
    from deplat.remote.connect import Layout, RemoteSite
    from deplat.secrets import SecretStore
    from deplat.site_results import SiteResult
    from deplat.spec.model import Site, Spec
    from deplat.transport.base import Completed

CADDY_DIR = "/etc/caddy"
SBIN_DIR = "/usr/local/sbin"
# Written at first boot only: they hold the provider's device path and never change afterwards.
FIRST_BOOT_ONLY = (f"{UNIT_DIR}/deplat-data.service", f"{SBIN_DIR}/deplat-mount-data")
BACKUP_TIMER = f"{UNIT_DIR}/deplat-backup@.timer"
CADDYFILE = f"{CADDY_DIR}/Caddyfile"
# What an up does to a VM that boots it anew (its bootstrap then writes the configuration).
NEW_VM_OPS = ("create", "replace", "create-replacement")
NO_SSH = (
    "its port 22 is closed to everyone (no options.ssh_cidrs), so changes of env values, images or "
    "secrets cannot reach it: add this machine's address to options.ssh_cidrs, or renew the VM with "
    "`deplat up --replace-vm`"
)

# One line per file named on the command line, in order: "MODE SHA256", or "- -" when missing.
HASH_SCRIPT = (
    'for f in "$@"; do if [ -f "$f" ]; then '
    'printf "%s %s\\n" "$(stat -c %a -- "$f")" "$(sha256sum < "$f" | cut -c1-64)"; '
    'else echo "- -"; fi; done'
)


@dataclass(frozen=True)
class VmFile:
    """One file as the bootstrap writes it: where on the VM, its mode, its content."""

    path: str  # as on a real VM (the bootstrap's path)
    mode: int
    content: bytes
    service: str | None = None  # the service whose env file or unit this is


@dataclass
class Pushed:
    """What a config push did on one site (paths as on a real VM; never a file's content)."""

    site: str
    ok: bool = True
    written: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # services
    enabled: list[str] = field(default_factory=list)  # services new on the site
    pulled: list[str] = field(default_factory=list)  # images
    reloaded: list[str] = field(default_factory=list)  # caddy, backup timers
    removed: list[Removed] = field(default_factory=list)  # services no longer in the spec
    not_removed: list[NotRemoved] = field(default_factory=list)  # ...that could not be stopped
    skipped: str | None = None  # why nothing was pushed
    error: str | None = None
    error_class: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)

    def summary(self) -> str:
        if self.skipped:
            return f"config: not pushed ({self.skipped})"
        if self.error:
            return "; ".join([f"config push failed: {self.error}", *(r.message for r in self.removed)])
        if not self.changed:
            return "config: unchanged, nothing restarted"
        parts = [f"{len(self.written)} file{'s' * (len(self.written) != 1)} written"] if self.written else []
        if self.restarted:
            parts.append("restarted " + ", ".join(self.restarted))
        if self.reloaded:
            parts.append("reloaded " + ", ".join(self.reloaded))
        parts += [r.message for r in self.removed]
        return "config: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        removed = {"removed": [r.to_dict() for r in self.removed]}
        return asdict(self) | removed | {"summary": self.summary()}


def wanted_files(spec: Spec, site: Site, secrets: SecretStore, role: str | None = None) -> list[VmFile]:
    """The files the bootstrap would write on ``site`` today, in its current ``role`` (default: from
    the active set: a failover's new primary runs the backup timers), with real secret values
    (``InputError`` naming a missing one), minus the first-boot-only ones."""
    from deplat.spec.model import Role
    from deplat.stacks.bootstrap import ProviderBits, vm_files
    from deplat.stacks.site_backups import backup_secrets
    from deplat.state import load_active

    role = role or load_active(spec).role_of(spec, site.name)
    if role in (r.value for r in Role) and role != site.role.value:
        site = site.model_copy(update={"role": Role(role)})
    values: dict[str, str] = {}
    for name, svc in spec.services.items():
        for secret in svc.secrets:
            values[secret] = secrets.require(secret, f"a secret of service {name}")
    for secret in backup_secrets(spec):
        values[secret] = secrets.require(secret, f"the backups of app {spec.app}")
    try:
        files = vm_files(spec, site, ProviderBits("/dev/null"), values)
    except ValueError as exc:  # a value with a newline: the message names it, never shows it
        raise InputError(str(exc)) from None
    owners = {f"{CONFIG_DIR}/{n}.env": n for n in spec.services}
    owners |= {f"{UNIT_DIR}/deplat-{n}.service": n for n in spec.services}
    return [
        VmFile(f["path"], int(f["permissions"], 8), f["content"].encode(), owners.get(f["path"]))
        for f in files
        if f["path"] not in FIRST_BOOT_ONLY
    ]


def on_site(path: str, layout: Layout) -> str:
    """Where ``path`` (as the bootstrap names it) is on the site described by ``layout``."""
    for prefix, there in (
        (BACKUP_CONF, layout.restic_dir),
        (CONFIG_DIR, layout.config_dir),
        (UNIT_DIR, layout.unit_dir),
        (CADDY_DIR, layout.caddy_dir),
        (SBIN_DIR, layout.sbin_dir),
    ):
        if path.startswith(prefix + "/"):
            return there + path[len(prefix) :]
    raise ValueError(f"the bootstrap writes {path}, which no Layout folder holds")


def push(spec: Spec, site: Site, secrets: SecretStore, remote: RemoteSite, emit: Emit = discard) -> Pushed:
    """Bring ``remote``'s files in line with the spec (see the module docstring). Raises what the
    transport raises (unreachable, key refused) and ``OperationFailed`` when a step fails."""
    layout = remote.layout
    files = wanted_files(spec, site, secrets)
    run = _runner(remote, secrets)
    targets = [on_site(f.path, layout) for f in files]
    units = "; ls -1 -- " + shlex.quote(layout.unit_dir) + " 2>/dev/null || true"
    listing = run(["sh", "-c", HASH_SCRIPT + units, "sh", *targets])
    lines = listing.stdout.splitlines()
    found, units_there = lines[: len(files)], lines[len(files) :]
    if len(found) != len(files):
        raise OperationFailed(
            f"on {remote.transport.where}: cannot read the site's files ({listing.describe()})"
        )
    result = Pushed(site.name)
    changed = []
    new_services = []
    for f, target, line in zip(files, targets, found, strict=True):
        mode, digest = line.split(" ", 1)
        if mode == f"{f.mode:o}" and digest == hashlib.sha256(f.content).hexdigest():
            continue
        emit(Event(EventKind.SITE_OP, f"config: writing {f.path}", site=site.name, data={"op": "config"}))
        remote.transport.put(f.content, target, mode=f.mode)
        result.written.append(f.path)
        changed.append(f)
        if mode == "-" and f.service and f.path.startswith(UNIT_DIR):
            new_services.append(f.service)
    services = [s for s in spec.services if any(f.service == s for f in changed)]
    units_changed = [f for f in changed if f.path.startswith(UNIT_DIR)]
    if units_changed:
        run([*layout.systemctl, "daemon-reload"])
    for name in services:
        if any(f.service == name and f.path.startswith(UNIT_DIR) for f in changed):
            image = spec.services[name].image
            emit(Event(EventKind.SITE_OP, f"config: pulling {image}", site=site.name, data={"op": "pull"}))
            run([*layout.docker, "pull", image], timeout=900)
            result.pulled.append(image)
    if new_services:
        run([*layout.systemctl, "enable", *(layout.unit(s) for s in new_services)])
        result.enabled = new_services
    if services:
        emit(
            Event(
                EventKind.SITE_OP,
                "config: restarting " + ", ".join(services),
                site=site.name,
                data={"op": "restart"},
            )
        )
        run([*layout.systemctl, "restart", *(layout.unit(s) for s in services)], timeout=900)
        result.restarted = services
    if any(f.path == CADDYFILE for f in changed):
        run([*layout.systemctl, "reload-or-restart", "caddy.service"])
        result.reloaded.append("caddy")
    if any(f.path == BACKUP_TIMER for f in changed):
        run([*layout.systemctl, "try-restart", "deplat-backup@*.timer"])
        result.reloaded.append("backup timers")
    stale = stale_services(units_there, spec)
    result.removed, result.not_removed = remove_services(site.name, layout, stale, run, emit)
    if result.not_removed:
        result.ok = False
        result.error_class = str(ErrorClass.FATAL)
        result.error = "config push: " + "; ".join(
            f"could not remove service {n.service} (no longer in the spec): {n.error}"
            for n in result.not_removed
        )
    return result


def _runner(remote: RemoteSite, secrets: SecretStore) -> Callable[..., Completed]:
    def run(argv: Sequence[str], timeout: float = 120) -> Completed:
        done = remote.transport.run(argv, timeout=timeout)
        if not done.ok:
            raise OperationFailed(secrets.masker.text(f"on {remote.transport.where}: {done.describe()}"))
        return done

    return run


class NewVms:
    """Passes events on and notes the sites whose VM an ``up`` creates or replaces (their first
    boot writes the configuration: no push)."""

    def __init__(self, spec: Spec, emit: Emit) -> None:
        self.spec, self.emit = spec, emit
        self.sites: set[str] = set()

    def __call__(self, event: Event) -> None:
        if event.kind == EventKind.SITE_OP and event.site and event.data.get("op") in NEW_VM_OPS:
            from deplat.providers import provider_of

            types = getattr(provider_of(self.spec.site(event.site)), "RESOURCE_TYPES", {})
            if event.data.get("type") == types.get("vm"):
                self.sites.add(event.site)
        self.emit(event)


def push_sites(
    spec: Spec,
    results: Sequence[SiteResult],
    secrets: SecretStore,
    emit: Emit = discard,
    *,
    new_vms: Sequence[str] = (),
    layout: Layout | Mapping[str, Layout] | None = None,
    connect_timeout: float = 10.0,
) -> dict[str, Pushed]:
    """Push the config to every cloud site ``up`` left running (``results`` that are ok and name an
    address), in parallel; ``new_vms``: sites whose VM this run created (skipped: their first boot
    writes the same files); ``layout``: where things are on the VMs (tests: one for every site, or
    one per site name; default: the bootstrap's). Each site's outcome is recorded on its result
    (``config``; a failed push fails the site) and emitted as a ``config.push`` event."""
    from deplat.providers import provider_of

    chosen = [
        r
        for r in results
        if r.ok and r.outputs.get("ipv4") and not provider_of(spec.site(r.site)).capabilities.runs_locally
    ]

    def one(result: SiteResult) -> Pushed:
        if result.site in new_vms:
            return Pushed(result.site, skipped="a new VM: its first boot writes the configuration")
        if not spec.site(result.site).options.get("ssh_cidrs"):
            return Pushed(result.site, skipped=NO_SSH)
        where = layout.get(result.site) if isinstance(layout, Mapping) else layout
        return _push_one(spec, result, secrets, emit, where, connect_timeout)

    if not chosen:
        return {}
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="deplat-config") as pool:
        pushed = dict(zip((r.site for r in chosen), pool.map(one, chosen), strict=True))
    for result in chosen:
        outcome = pushed[result.site]
        result.config = outcome.to_dict()
        if not outcome.ok:
            result.ok = False
            result.error = outcome.error
            result.error_class = outcome.error_class
        emit(
            Event(
                EventKind.CONFIG_PUSH,
                outcome.summary(),
                site=result.site,
                data=outcome.to_dict(),
            )
        )
    return pushed


def _push_one(
    spec: Spec,
    result: SiteResult,
    secrets: SecretStore,
    emit: Emit,
    layout: Layout | None,
    connect_timeout: float,
) -> Pushed:
    from deplat.remote.connect import endpoint_of, open_site

    site = spec.site(result.site)
    try:
        with open_site(
            spec,
            site,
            secrets,
            endpoint=endpoint_of(site, result.outputs),
            layout=layout,
            connect_timeout=connect_timeout,
        ) as remote:
            return push(spec, site, secrets, remote, emit)
    except DeplatError as exc:
        message = secrets.masker.text(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        error_class = getattr(exc, "error_class", None) or (
            ErrorClass.INPUT if isinstance(exc, InputError) else ErrorClass.FATAL
        )
        return Pushed(site.name, ok=False, error=f"config push: {message}", error_class=str(error_class))
