"""What a cloud site's bootstrap writes for its backups (rendered into the document by ``bootstrap``).

Backups (restic from the distribution), written only when the spec declares ``backups.repositories``
(every one that is not a ``local`` directory, in the spec's order) and some service has a volume:

- ``/etc/deplat/restic/restic.env`` (0600): the restic password and the app, site and ``keep``;
  ``/etc/deplat/restic/repo-NN.env`` (0600), one per repository: ``RESTIC_REPOSITORY``, its keys, its
  region and its deadline. Shell assignments, sourced inside a subshell per repository, so no secret
  is ever on a command line;
- ``deplat-backup@.service`` + ``deplat-backup@.timer``, one template whose instance is the service's
  name, running ``/usr/local/sbin/deplat-backup SERVICE`` every ``backups.interval``: nothing when
  the newest primary lease in the repositories (``deplat.data.lease``, written by each failover)
  names another site; else the service's ``pre_backup`` command first
  (``/etc/deplat/restic/pre-SERVICE``: ``docker exec`` in its container;
  when it fails nothing is backed up), then ``restic backup`` of ``/srv/deplat/SERVICE`` from inside
  it to every repository (host = the site, tags ``app=``, ``service=`` and ``seq=`` like
  ``deplat.data.restic``: ``seq`` one more than the highest of the service's snapshots in every
  repository that answers, from any site; an empty folder is a snapshot of one ``.deplat-empty``
  marker), then ``forget --prune`` of that site's snapshots of the service but the newest KEEP in
  ``deplat.data.restic``'s order (sequence, then time: never restic's ``--keep-last``, which goes
  by the clock that took them). A repository that fails
  (or does not answer ``cat config`` within its deadline) is skipped and the unit fails, for the
  journal; the others are written. The timers run with their services (``Wants=`` in the
  service's unit) on the spec's primary and on cold sites (stood up to become primary), not on
  warm ones: a standby backing up stale data would make the newest snapshot a stale one;
- ``deplat-restore@.service``, one template too, ordered ``Before=deplat-%i.service`` and pulled in
  by each stateful service's unit (``Wants=``), running ``/usr/local/sbin/deplat-restore
  SERVICE``: for each service whose folder is empty at first boot
  (no ``/srv/deplat/.deplat-restored-SERVICE`` marker on the volume yet), the newest snapshot across
  the repositories that answer within their deadline, in the same order (a stale snapshot dated in
  the future by a clock jump never wins), is restored (the next newest when a restore fails); the
  services start afterwards whatever happened.

Both scripts take ``DEPLAT_CONF`` and ``DEPLAT_DATA`` from the environment (tests run them for real).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deplat.stacks.vm_layout import BACKUP_CONF, _assign, _secret

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

# The head both backup scripts share: where things are, how a file of assignments is read, and
# deplat.data.restic's order of snapshots (restic's JSON is one line; its objects hold no object).
_RESTIC_HEAD = """\
conf="${DEPLAT_CONF:-/etc/deplat/restic}"
root="${DEPLAT_DATA:-/srv/deplat}"
# shellcheck source=/dev/null
load() { set -a && . "$1" && set +a; }
order() { # restic snapshots --json on stdin -> "SEQ EPOCH ID" a line, oldest first
    { sed 's/},{/}\\n{/g'; echo; } | while IFS= read -r snap; do
        id=$(printf '%s' "$snap" | grep -o '"id":"[0-9a-f]*"' | cut -d '"' -f 4)
        [ -n "$id" ] || continue
        n=$(printf '%s' "$snap" | grep -o '"seq=[0-9]*"' | tr -dc '0-9')
        t=$(printf '%s' "$snap" | grep -o '"time":"[^"]*"' | cut -d '"' -f 4)
        echo "${n:-0} $(date -d "$t" +%s) $id"
    done | sort -k1,1n -k2,2n -k3,3
}
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
load "$conf/restic.env"
holder() { # "SEQ SITE" of the newest primary lease in repository $1 (deplat.data.lease); none: empty
    load "$1" || return 1
    timeout "$DEPLAT_DEADLINE" restic snapshots --json --no-lock --tag "app=$DEPLAT_APP,deplat=primary" \
        | { sed 's/},{/}\\n{/g'; echo; } | while IFS= read -r snap; do
            h=$(printf '%s' "$snap" | grep -o '"hostname":"[^"]*"' | cut -d '"' -f 4)
            [ -n "$h" ] || continue
            n=$(printf '%s' "$snap" | grep -o '"seq=[0-9]*"' | tr -dc '0-9')
            echo "${n:-0} $h"
        done | sort -k1,1n | tail -n 1
}
lease=""
for repo in "$conf"/repo-*.env; do
    line=$(holder "$repo") || line=""
    if [ -n "$line" ] && { [ -z "$lease" ] || [ "${line%% *}" -gt "${lease%% *}" ]; }; then
        lease="$line"
    fi
done
if [ -n "$lease" ] && [ "${lease#* }" != "$DEPLAT_SITE" ]; then
    echo "deplat: no backup of $svc: ${lease#* } is the primary now (a failover moved it there)" >&2
    exit 0
fi
if [ -x "$conf/pre-$svc" ]; then
    "$conf/pre-$svc"
fi
last() { # the highest sequence number of $svc's snapshots in repository $1 (any site)
    load "$1" || return 1
    timeout "$DEPLAT_DEADLINE" restic snapshots --json --no-lock --tag "app=$DEPLAT_APP,service=$svc" \\
        | order | tail -n 1 | cut -d ' ' -f 1
}
top=0
for repo in "$conf"/repo-*.env; do
    n=$(last "$repo") || n=0
    if [ "${n:-0}" -gt "$top" ]; then top="$n"; fi
done
seq=$((top + 1))
to() {
    load "$1" || return 1
    if ! timeout "$DEPLAT_DEADLINE" restic cat config --no-lock >/dev/null 2>&1; then
        timeout "$DEPLAT_DEADLINE" restic init || return 1
    fi
    cd "$data" || return 1
    set -- --host "$DEPLAT_SITE" --tag "app=$DEPLAT_APP" --tag "service=$svc" --tag "seq=$seq"
    if [ -z "$(ls -A .)" ]; then
        echo "this folder was empty" | restic backup "$@" --stdin --stdin-filename .deplat-empty || return 1
    else
        restic backup "$@" . || return 1
    fi
    old=$(restic snapshots --json --no-lock --host "$DEPLAT_SITE" --tag "app=$DEPLAT_APP,service=$svc" \\
        | order | head -n "-$DEPLAT_KEEP" | cut -d ' ' -f 3) || return 1
    if [ -n "$old" ]; then
        # shellcheck disable=SC2086 # one word per snapshot id
        restic forget --prune $old || return 1
    fi
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
newest() { # the newest snapshot of service $1 in repository $2, as "SEQ EPOCH ID"; nothing if none
    out=$(load "$2" && timeout "$DEPLAT_DEADLINE" restic snapshots --json --no-lock \\
        --tag "app=$DEPLAT_APP,service=$1") || return 1
    printf '%s' "$out" | order | tail -n 1
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
    while read -r _ _ id repo; do
        [ -n "$id" ] || continue
        rm -rf "$incoming"
        if (load "$repo" && restic restore "$id" --target "$incoming"); then
            rm -f "$incoming/.deplat-empty"
            rm -rf "$data" && mv "$incoming" "$data" && touch "$mark" && return 0
        fi
        echo "deplat: restore of $svc from ${repo##*/} failed" >&2
        failed=1
    done <<EOF
$(printf '%s' "$found" | sort -k1,1nr -k2,2nr)
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
