"""The bootstrap of a cloud site: one cloud-init document, the same on every provider.

Every cloud site runs Ubuntu 24.04 LTS (the one image all three providers publish with cloud-init
enabled), so packages, paths and units are the same everywhere. On first boot the document:

1. installs ``docker.io`` (the container runtime) and ``caddy`` (the HTTPS front), both from the
   distribution;
2. mounts the site's data volume at ``/srv/deplat`` through ``deplat-data.service``, which waits
   for the device (AWS attaches the volume after the instance boots), formats it only when it holds
   no filesystem, and mounts it again on every boot;
3. writes one systemd unit per service, ``deplat-<service>.service``, that runs the service's image
   with its command, arguments, ports, environment and volumes (``/srv/deplat/<service>/<volume>``),
   restarts it when it stops and starts it again after a reboot; containers share a Docker network
   ``deplat`` and reach each other by service name;
4. puts the domain's names behind HTTPS: Caddy proxies them to the front service (the first service
   in the spec with a public port) and obtains ACME certificates once DNS points at the site.

Public ports are published on every interface (the provider's firewall opens them); other ports
only on 127.0.0.1.

5. backs up each stateful service's data (see "Backups" below) and, at first boot, restores it
   from the newest snapshot before the services start.

Provider bits: the only lines that differ between providers come from ``ProviderBits``:

- ``data_device``: the stable path of the data volume as the VM sees it
  (AWS ``/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…``, GCP ``/dev/disk/by-id/google-data``,
  Hetzner ``/dev/disk/by-id/scsi-0HC_Volume_<id>``). It appears once, in ``deplat-data.service``.

Transport: AWS and Hetzner receive the document gzip-compressed and base64-encoded (``pack``):
cloud-init recognises gzip by itself, EC2 takes it as ``user_data_base64`` and Hetzner's datasource
base64-decodes user data, so their limits (EC2 16 KB, Hetzner 32 KiB) apply to the compressed size
and a site can carry around a hundred services. GCP gets the plain text (its limit is 256 KB). The
document itself is the same; only the envelope differs.

Secrets: a service's secrets are written, with its plain environment, to
``/etc/deplat/<service>.env`` (mode 0600, root), which the unit hands to ``docker run --env-file``.
They therefore travel inside the user data, and the site program marks the user data Output as a
Pulumi secret (``pulumi.Output.secret``): Pulumi encrypts it in the state, shows ``[secret]`` in
previews, diffs and logs, and deplat never prints it. We chose this over a per-provider secret store
(SSM, Secret Manager; Hetzner has none) because it is identical on every provider and needs no call
to the provider at boot, which matters on a standby stood up while another provider is gone. The
price: the provider itself (the host) and root on the VM can read user data; on AWS the instance
metadata service is limited to IMDSv2 with one hop so containers cannot read it.

Backups (restic from the distribution), written only when the spec declares ``backups.repositories``
(every one that is not a ``local`` directory, in the spec's order) and some service has a volume:

- ``/etc/deplat/restic/restic.env`` (0600): the restic password and the app, site and ``keep``;
  ``/etc/deplat/restic/repo-NN.env`` (0600), one per repository: ``RESTIC_REPOSITORY``, its keys, its
  region and its deadline. Shell assignments, sourced inside a subshell per repository, so no secret
  is ever on a command line;
- ``deplat-backup@.service`` + ``deplat-backup@.timer``, one template whose instance is the service's
  name, running ``/usr/local/sbin/deplat-backup SERVICE`` every ``backups.interval``: the service's
  ``pre_backup`` command first (``/etc/deplat/restic/pre-SERVICE``: ``docker exec`` in its container;
  when it fails nothing is backed up), then ``restic backup`` of ``/srv/deplat/SERVICE`` from inside
  it to every repository (host = the site, tags ``app=`` and ``service=`` like
  ``deplat.data.restic``; an empty folder is a snapshot of one ``.deplat-empty`` marker), then
  ``forget --prune --keep-last KEEP`` of that site's snapshots of the service. A repository that fails
  (or does not answer ``cat config`` within its deadline) is skipped and the unit fails, for the
  journal; the others are written. The timers run with their services (``Wants=`` in the
  service's unit) on the spec's primary and on cold sites (stood up to become primary), not on
  warm ones: a standby backing up stale data would make the newest snapshot a stale one;
- ``deplat-restore@.service``, one template too, ordered ``Before=deplat-%i.service`` and pulled in
  by each stateful service's unit (``Wants=``), running ``/usr/local/sbin/deplat-restore
  SERVICE``: for each service whose folder is empty at first boot
  (no ``/srv/deplat/.deplat-restored-SERVICE`` marker on the volume yet), the newest snapshot across
  the repositories that answer within their deadline is restored (the next newest when a restore
  fails); the services start afterwards whatever happened.

Both scripts take ``DEPLAT_CONF`` and ``DEPLAT_DATA`` from the environment (tests run them for real).
"""

from __future__ import annotations

import base64
import gzip
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from deplat.spec.model import Service, Site, Spec

DATA_DIR = "/srv/deplat"
CONFIG_DIR = "/etc/deplat"
BACKUP_CONF = f"{CONFIG_DIR}/restic"
PACKAGES = ("docker.io", "caddy", "restic")
# What a secret stands for when its value is not known (offline plans, size checks).
PLACEHOLDER_BYTES = 64


@dataclass(frozen=True)
class ProviderBits:
    """What a provider contributes to the otherwise identical bootstrap (see the module docstring)."""

    data_device: str


MOUNT_SCRIPT = f"""\
#!/bin/sh
# deplat: mount the site's data volume at {DATA_DIR}. Runs on every boot.
# Waits for the device (some providers attach it after boot), formats it only when blank.
set -eu
dev="$1"
target={DATA_DIR}
i=0
while [ ! -b "$dev" ]; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then
        echo "deplat: data device $dev did not appear in 300 s" >&2
        exit 1
    fi
    sleep 1
done
dev=$(readlink -f "$dev")
if ! blkid "$dev" >/dev/null 2>&1; then
    mkfs.ext4 -q -L deplat-data "$dev"
fi
mkdir -p "$target"
mountpoint -q "$target" || mount -o defaults,noatime "$dev" "$target"
"""


# The head both backup scripts share: where things are, and how a file of assignments is read.
_RESTIC_HEAD = """\
conf="${DEPLAT_CONF:-/etc/deplat/restic}"
root="${DEPLAT_DATA:-/srv/deplat}"
# shellcheck source=/dev/null
load() { set -a && . "$1" && set +a; }
"""

BACKUP_SCRIPT = (
    """\
#!/bin/sh
# deplat: back up one service's data folder to every restic repository (deplat-backup@SERVICE).
set -eu
svc="$1"
"""
    + _RESTIC_HEAD
    + """\
data="$root/$svc"
mkdir -p "$data"
if [ -x "$conf/pre-$svc" ]; then
    "$conf/pre-$svc"
fi
load "$conf/restic.env"
to() {
    load "$1" || return 1
    if ! timeout "$DEPLAT_DEADLINE" restic cat config --no-lock >/dev/null 2>&1; then
        timeout "$DEPLAT_DEADLINE" restic init || return 1
    fi
    cd "$data" || return 1
    set -- --host "$DEPLAT_SITE" --tag "app=$DEPLAT_APP" --tag "service=$svc"
    if [ -z "$(ls -A .)" ]; then
        echo "this folder was empty" | restic backup "$@" --stdin --stdin-filename .deplat-empty || return 1
    else
        restic backup "$@" . || return 1
    fi
    restic forget --prune --keep-last "$DEPLAT_KEEP" --host "$DEPLAT_SITE" \\
        --tag "app=$DEPLAT_APP,service=$svc" --group-by host,tags
}
failed=0
for repo in "$conf"/repo-*.env; do
    if ! (to "$repo"); then
        echo "deplat: backup of $svc to ${repo##*/} failed" >&2
        failed=1
    fi
done
exit "$failed"
"""
)

RESTORE_SCRIPT = (
    """\
#!/bin/sh
# deplat: at first boot, restore each named service's empty data folder from the newest snapshot
# across the repositories that answer (deplat-restore@SERVICE, before the service starts).
set -u
"""
    + _RESTIC_HEAD
    + """\
load "$conf/restic.env" || exit 1
newest() { # the newest snapshot of service $1 in repository $2, as "EPOCH ID"; nothing if none
    out=$(load "$2" && timeout "$DEPLAT_DEADLINE" restic snapshots --json --no-lock \\
        --tag "app=$DEPLAT_APP,service=$1") || return 1
    id=$(printf '%s' "$out" | grep -o '"id":"[0-9a-f]*"' | tail -n 1 | cut -d '"' -f 4)
    [ -n "$id" ] || return 0
    t=$(printf '%s' "$out" | grep -o '"time":"[^"]*"' | tail -n 1 | cut -d '"' -f 4)
    echo "$(date -d "$t" +%s) $id"
}
restore() {
    svc="$1" data="$root/$1" mark="$root/.deplat-restored-$1" found="" failed=0
    if [ -e "$mark" ]; then return 0; fi
    if [ -n "$(ls -A "$data" 2>/dev/null)" ]; then touch "$mark"; return 0; fi
    for repo in "$conf"/repo-*.env; do
        if line=$(newest "$svc" "$repo"); then
            [ -z "$line" ] || found="$found$line $repo
"
        else
            echo "deplat: repository ${repo##*/} skipped for $svc" >&2
            failed=1
        fi
    done
    incoming="$root/.$svc.restore"
    while read -r _ id repo; do
        [ -n "$id" ] || continue
        rm -rf "$incoming"
        if (load "$repo" && restic restore "$id" --target "$incoming"); then
            rm -f "$incoming/.deplat-empty"
            rm -rf "$data" && mv "$incoming" "$data" && touch "$mark" && return 0
        fi
        echo "deplat: restore of $svc from ${repo##*/} failed" >&2
        failed=1
    done <<EOF
$(printf '%s' "$found" | sort -rn)
EOF
    rm -rf "$incoming"
    if [ "$failed" = 0 ]; then touch "$mark"; fi
    return "$failed"
}
rc=0
for svc in "$@"; do
    restore "$svc" || rc=1
done
exit "$rc"
"""
)

BACKUP_UNIT = """\
[Unit]
Description=deplat backup of service %i
Requires=deplat-data.service
After=deplat-data.service deplat-restore@%i.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
Nice=10
IOSchedulingClass=idle
ExecStart=/usr/local/sbin/deplat-backup %i
"""

RESTORE_UNIT = """\
[Unit]
Description=deplat restore of service %i's empty data folder at first boot
Requires=deplat-data.service
After=deplat-data.service network-online.target
Wants=network-online.target
Before=deplat-%i.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/usr/local/sbin/deplat-restore %i
"""


def render(
    spec: Spec,
    site: Site,
    provider_bits: ProviderBits,
    secret_values: Mapping[str, str] | None = None,
) -> str:
    """The ``#cloud-config`` text for ``site``.

    ``secret_values`` maps secret names to values; a name missing from it (or ``None``: all of
    them) is written as a placeholder of ``PLACEHOLDER_BYTES`` bytes, for offline plans and size
    checks. Raises ``ValueError`` (naming the secret, never its value) when a value holds a newline,
    which an env file cannot carry.
    """
    files: list[dict[str, Any]] = [
        {"path": "/usr/local/sbin/deplat-mount-data", "permissions": "0755", "content": MOUNT_SCRIPT},
        {
            "path": "/etc/systemd/system/deplat-data.service",
            "permissions": "0644",
            "content": _data_unit(provider_bits.data_device),
        },
    ]
    units = ["deplat-data.service"]
    backup_files, backs_up = _backups(spec, site, secret_values)
    files += backup_files
    for name, svc in spec.services.items():
        files.append(
            {
                "path": f"{CONFIG_DIR}/{name}.env",
                "permissions": "0600",
                "content": _env_file(name, svc, site, secret_values),
            }
        )
        files.append(
            {
                "path": f"/etc/systemd/system/deplat-{name}.service",
                "permissions": "0644",
                "content": service_unit(
                    name, svc, restore=bool(backup_files) and svc.stateful, backup=backs_up and svc.stateful
                ),
            }
        )
        units.append(f"deplat-{name}.service")
    caddyfile = _caddyfile(spec)
    files.append(
        # deferred: written after the caddy package has installed its own default file
        {"path": "/etc/caddy/Caddyfile", "permissions": "0644", "content": caddyfile, "defer": True}
    )
    doc: dict[str, Any] = {
        "package_update": True,
        "packages": list(PACKAGES),
        "write_files": files,
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "docker.service"],
            ["systemctl", "enable", "--now", *units],
            ["systemctl", "enable", "caddy.service"],
            ["systemctl", "reload-or-restart", "caddy.service"],
        ],
    }
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=1000)
    return f"#cloud-config\n# deplat bootstrap for app {spec.app}\n{body}"


def pack(text: str) -> str:
    """The document gzip-compressed (deterministically: no timestamp) and base64-encoded."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")


def unpack(packed: str) -> str:
    return gzip.decompress(base64.b64decode(packed)).decode("utf-8")


def front(spec: Spec) -> tuple[str, int] | None:
    """The service and port the domain's names are proxied to: the first service with a public
    port (its health port if that one is public, else its first public port)."""
    for name, svc in spec.services.items():
        public = svc.public_ports
        if public:
            if svc.health and svc.health.port in public:
                return name, svc.health.port
            return name, public[0]
    return None


def service_unit(name: str, svc: Service, *, restore: bool = False, backup: bool = False) -> str:
    """The systemd unit that runs one service's container; ``restore``: after its data's restore at
    first boot (``deplat-restore@NAME.service``); ``backup``: its backup timer runs with it
    (``deplat-backup@NAME.timer``, one word in ``Wants=`` rather than a list to enable)."""
    container = f"deplat-{name}"
    restored = f"deplat-restore@{name}.service"
    run = ["/usr/bin/docker", "run", "--rm", "--name", container, "--network", "deplat"]
    run += ["--network-alias", name, "--env-file", f"{CONFIG_DIR}/{name}.env"]
    for p in svc.ports:
        bind = "" if p.public else "127.0.0.1:"
        run += ["-p", f"{bind}{p.port}:{p.port}/{p.protocol}"]
    dirs = []
    for vol in svc.volumes:
        host = f"{DATA_DIR}/{name}/{vol.name}"
        dirs.append(host)
        run += ["-v", f"{host}:{vol.path}"]
    if svc.command:
        run += ["--entrypoint", svc.command[0]]
    run.append(svc.image)
    if svc.command:
        run += svc.command[1:]
    run += svc.args
    lines = [
        "[Unit]",
        f"Description=deplat service {name} ({svc.image})",
        "Requires=docker.service deplat-data.service",
        "After=docker.service deplat-data.service network-online.target",
        "Wants=network-online.target"
        + (f" {restored}" if restore else "")
        + (f" deplat-backup@{name}.timer" if backup else ""),
        "",
        "[Service]",
        "Restart=always",
        "RestartSec=5",
        "TimeoutStartSec=900",
    ]
    if dirs:
        lines.append("ExecStartPre=/bin/mkdir -p " + " ".join(_quote(d) for d in dirs))
    lines += [
        f"ExecStartPre=-/usr/bin/docker rm -f {container}",
        "ExecStartPre=-/usr/bin/docker network create deplat",
        f"ExecStartPre=-/usr/bin/docker pull {_quote(svc.image)}",
        "ExecStart=" + " ".join(_quote(a) for a in run),
        f"ExecStop=/usr/bin/docker stop {container}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _secret(name: str, secret_values: Mapping[str, str] | None, what: str) -> str:
    known = (secret_values or {}).get(name)
    value = "x" * PLACEHOLDER_BYTES if known is None else known
    if "\n" in value or "\r" in value:
        raise ValueError(f"secret {name} ({what}) holds a newline, which an env file cannot carry")
    return value


def _assign(key: str, value: str) -> str:
    return f"{key}={shlex.quote(value)}"


def backup_secrets(spec: Spec) -> list[str]:
    """The secrets the bootstrap's backups need: the restic password and the repositories' keys."""
    from deplat.spec.model import RepositoryKind

    repos = [r for r in spec.backups.repositories if r.type is not RepositoryKind.local]
    if not repos or not any(svc.stateful for svc in spec.services.values()):
        return []
    keys = [name for r in repos for name in (r.access_key, r.secret_key) if name]
    return list(dict.fromkeys([spec.backups.password, *keys]))


def _backups(
    spec: Spec, site: Site, secret_values: Mapping[str, str] | None
) -> tuple[list[dict[str, Any]], bool]:
    """The backup and restore files of ``site`` (see the module docstring) and whether its timers run;
    nothing when no service has a volume or the spec declares no repository a cloud site can use."""
    from deplat.data.repositories import url
    from deplat.spec.model import RepositoryKind, Role

    if not backup_secrets(spec):
        return [], False
    repos = [r for r in spec.backups.repositories if r.type is not RepositoryKind.local]
    stateful = [name for name, svc in spec.services.items() if svc.stateful]
    password = _secret(spec.backups.password, secret_values, f"backups of site {site.name}")
    common = [
        "# deplat: the restic password and this site's names (root only)",
        _assign("RESTIC_PASSWORD", password),
        _assign("DEPLAT_APP", spec.app),
        _assign("DEPLAT_SITE", site.name),
        f"DEPLAT_KEEP={spec.backups.keep}",
    ]
    env = "\n".join(common) + "\n"
    files: list[dict[str, Any]] = [
        {"path": f"{BACKUP_CONF}/restic.env", "permissions": "0600", "content": env}
    ]
    for i, repo in enumerate(repos, 1):
        lines = [f"# deplat: restic repository {repo.name} ({repo.held_by})"]
        lines.append(_assign("RESTIC_REPOSITORY", url(repo, spec.base_dir)))
        for var, name in (("AWS_ACCESS_KEY_ID", repo.access_key), ("AWS_SECRET_ACCESS_KEY", repo.secret_key)):
            if name:
                lines.append(_assign(var, _secret(name, secret_values, f"repository {repo.name}")))
        if repo.region:
            lines.append(_assign("AWS_DEFAULT_REGION", repo.region))
        lines.append(f"DEPLAT_DEADLINE={max(1, round(repo.deadline))}")
        path = f"{BACKUP_CONF}/repo-{i:02d}.env"
        files.append({"path": path, "permissions": "0600", "content": "\n".join(lines) + "\n"})
    for name in stateful:
        pre = spec.services[name].pre_backup
        if pre:
            path = f"{BACKUP_CONF}/pre-{name}"
            files.append({"path": path, "permissions": "0700", "content": pre_backup_script(name, pre)})
    files += [
        {"path": "/usr/local/sbin/deplat-backup", "permissions": "0755", "content": BACKUP_SCRIPT},
        {"path": "/usr/local/sbin/deplat-restore", "permissions": "0755", "content": RESTORE_SCRIPT},
        {"path": "/etc/systemd/system/deplat-backup@.service", "permissions": "0644", "content": BACKUP_UNIT},
        {
            "path": "/etc/systemd/system/deplat-backup@.timer",
            "permissions": "0644",
            "content": backup_timer(spec.backups.interval),
        },
        {
            "path": "/etc/systemd/system/deplat-restore@.service",
            "permissions": "0644",
            "content": RESTORE_UNIT,
        },
    ]
    return files, site.role in (Role.primary, Role.cold)


def backup_timer(interval: float) -> str:
    """Every ``interval`` seconds (first one ``interval`` after boot), one service's backup."""
    every = f"{max(1, round(interval * 1000))}ms"
    return "\n".join(
        [
            "[Unit]",
            "Description=deplat backups of service %i",
            "",
            "[Timer]",
            f"OnActiveSec={every}",
            f"OnUnitActiveSec={every}",
            "AccuracySec=1s",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def pre_backup_script(name: str, argv: list[str]) -> str:
    """The service's ``pre_backup`` command, run in its running container before each backup."""
    command = shlex.join(["docker", "exec", f"deplat-{name}", *argv])
    return f"#!/bin/sh\n# deplat: before each backup of {name} (services.{name}.pre_backup)\nexec {command}\n"


def _data_unit(device: str) -> str:
    return "\n".join(
        [
            "[Unit]",
            "Description=deplat data volume",
            "Before=docker.service",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"ExecStart=/usr/local/sbin/deplat-mount-data {_quote(device)}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def _env_file(name: str, svc: Service, site: Site, secret_values: Mapping[str, str] | None) -> str:
    lines = [f"# deplat: environment of service {name}"]
    for key, value in svc.env.items():
        if "\n" in value:
            raise ValueError(f"services.{name}.env.{key}: a value with a newline cannot go in an env file")
        lines.append(f"{key}={value}")
    for secret in svc.secrets:
        known = (secret_values or {}).get(secret)
        value = "x" * PLACEHOLDER_BYTES if known is None else known
        if "\n" in value or "\r" in value:
            raise ValueError(
                f"secret {secret} (service {name}, site {site.name}) holds a newline, "
                "which an env file cannot carry"
            )
        lines.append(f"{secret}={value}")
    return "\n".join(lines) + "\n"


def _caddyfile(spec: Spec) -> str:
    head = "# deplat: the domain's names over HTTPS (ACME certificates once DNS points here)\n"
    target = front(spec)
    if target is None:
        return head + "# no service has a public port: nothing to serve\n"
    names = ", ".join(n.rstrip(".") for n in spec.domain.names)
    return f"{head}{names} {{\n    reverse_proxy 127.0.0.1:{target[1]}\n}}\n"


_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def _quote(arg: str) -> str:
    """One argument of a systemd command line: specifiers (%) and variables ($) escaped."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line strings as literal blocks, so the document reads like the files it writes.
    libyaml's emitter when PyYAML has it: ten times faster on a 200-service spec."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
