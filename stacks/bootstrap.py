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
   in the spec with a public port) with the certificate deplat obtains and installs (``_caddyfile``);
   Caddy never asks a public ACME CA itself.

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

SSH: deplat reaches a running site as root with the app's own key (``deplat.remote``): to stop and
start services, restore data onto a warm standby, take a planned failover's final backup. cloud-init's
``cc_ssh`` writes ``ssh_authorized_keys`` to the default user's and, with ``disable_root: false``,
to root's ``authorized_keys`` without the "login as the default user" command prefix;
``ssh_pwauth: false`` turns password logins off (key only). Port 22 is open only to the site's
``options.ssh_cidrs`` (every provider's firewall); without them SSH stays closed.

Backups and the restore at first boot: ``stacks/site_backups.py``. Constants and quoting shared by
both: ``stacks/vm_layout.py``.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from deplat.stacks.site_backups import _backups, backup_secrets
from deplat.stacks.vm_layout import (
    BACKUP_CONF,
    CONFIG_DIR,
    DATA_DIR,
    PLACEHOLDER_BYTES,
    TLS_DIR,
    _quote,
)

if TYPE_CHECKING:
    from deplat.spec.model import Service, Site, Spec

__all__ = [
    "BACKUP_CONF",
    "CONFIG_DIR",
    "DATA_DIR",
    "PLACEHOLDER_BYTES",
    "ProviderBits",
    "backup_secrets",
    "front",
    "pack",
    "placeholder_key",
    "render",
    "service_unit",
    "unpack",
    "vm_files",
]

PACKAGES = ("docker.io", "caddy", "restic")


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


def placeholder_key(app: str) -> str:
    """An ed25519 public key line of the real size, for offline plans and size checks."""
    return f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{'A' * 44} deplat-{app}"


def render(
    spec: Spec,
    site: Site,
    provider_bits: ProviderBits,
    secret_values: Mapping[str, str] | None = None,
    *,
    authorized_key: str | None = None,
) -> str:
    """The ``#cloud-config`` text for ``site``.

    ``secret_values`` maps secret names to values; a name missing from it (or ``None``: all of
    them) is written as a placeholder of ``PLACEHOLDER_BYTES`` bytes, for offline plans and size
    checks. Raises ``ValueError`` (naming the secret, never its value) when a value holds a newline,
    which an env file cannot carry. ``authorized_key``: the app's SSH public key line (None: a
    placeholder of the same size).
    """
    files = vm_files(spec, site, provider_bits, secret_values)
    units = ["deplat-data.service", *(f"deplat-{name}.service" for name in spec.services)]
    doc: dict[str, Any] = {
        # SSH (see "SSH" in the module docstring): the app's key for root, key only
        "disable_root": False,
        "ssh_pwauth": False,
        "ssh_authorized_keys": [authorized_key or placeholder_key(spec.app)],
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


def vm_files(
    spec: Spec,
    site: Site,
    provider_bits: ProviderBits,
    secret_values: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every file the bootstrap writes on ``site``'s VM, as cloud-init ``write_files`` entries
    (``path``, ``permissions``, ``content``, ``defer``), in order. ``deplat.remote.config`` pushes
    the same files to a running site, so what a site holds never depends on when it booted."""
    files: list[dict[str, Any]] = [
        {"path": "/usr/local/sbin/deplat-mount-data", "permissions": "0755", "content": MOUNT_SCRIPT},
        {
            "path": "/etc/systemd/system/deplat-data.service",
            "permissions": "0644",
            "content": _data_unit(provider_bits.data_device),
        },
    ]
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
    files.append(
        # deferred: written after the caddy package has installed its own default file
        {"path": "/etc/caddy/Caddyfile", "permissions": "0644", "content": _caddyfile(spec), "defer": True}
    )
    return files


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
    (``deplat-backup@NAME.timer``, one word in ``Wants=`` rather than a list to enable).

    The container is named after the unit through systemd's ``%N`` (``deplat-NAME``): the lines
    that name it are then the same in every unit, which keeps the packed document small (200
    stateful services fit AWS's 16 KiB with room to spare)."""
    container = "%N"  # the unit's name without its suffix: deplat-NAME
    restored = f"deplat-restore@{name}.service"
    run = ["/usr/bin/docker", "run", "--rm", "--name", container, "--network", "deplat"]
    run += ["--network-alias", _quote(name), "--env-file", _quote(f"{CONFIG_DIR}/{name}.env")]
    for p in svc.ports:
        bind = "" if p.public else "127.0.0.1:"
        run += ["-p", _quote(f"{bind}{p.port}:{p.port}/{p.protocol}")]
    dirs = []
    for vol in svc.volumes:
        host = f"{DATA_DIR}/{name}/{vol.name}"
        dirs.append(host)
        run += ["-v", _quote(f"{host}:{vol.path}")]
    if svc.command:
        run += ["--entrypoint", _quote(svc.command[0])]
    run.append(_quote(svc.image))
    run += [_quote(a) for a in [*(svc.command or [])[1:], *svc.args]]
    lines = [
        "[Unit]",
        f"Description=deplat service {name}",
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
        "ExecStart=" + " ".join(run),
        f"ExecStop=/usr/bin/docker stop {container}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


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


def _caddyfile(spec: Spec, *, tls_dir: str = TLS_DIR, global_options: Sequence[str] = ()) -> str:
    """Caddy's configuration: the domain's names proxied to the front service over HTTPS.

    The certificate is deplat's (obtained by ACME DNS-01, ``deplat.certs``), installed over SSH
    into ``tls_dir`` (``deplat.remote.certs``) with ``tls.caddy``, the line ``tls <chain> <key>``
    that the site block imports. Caddy never runs ACME against a public CA: that fails on a standby while
    DNS points elsewhere, and every replacement VM would take one of the CA's few duplicates a week.
    Before deplat's first install (the import's glob matches nothing, which Caddy accepts),
    ``local_certs`` makes Caddy serve a certificate from its own local CA, which no browser trusts:
    the site answers HTTPS, the failover's certificate step sees it is not deplat's and installs
    deplat's before traffic moves. ``skip_install_trust``: Caddy leaves the VM's trust store alone.
    ``global_options``: more lines for the global block (tests: admin address, ports, storage).
    """
    head = "# deplat: the domain's names over HTTPS with deplat's certificate (see deplat.remote.certs)\n"
    target = front(spec)
    if target is None:
        return head + "# no service has a public port: nothing to serve\n"
    options = "".join(f"    {line}\n" for line in ("local_certs", "skip_install_trust", *global_options))
    names = ", ".join(n.rstrip(".") for n in spec.domain.names)
    return (
        f"{head}{{\n{options}}}\n"
        f"{names} {{\n    import {tls_dir}/*.caddy\n"
        f"    reverse_proxy 127.0.0.1:{target[1]}\n}}\n"
    )


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line strings as literal blocks, so the document reads like the files it writes.
    libyaml's emitter when PyYAML has it: ten times faster on a 200-service spec."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
