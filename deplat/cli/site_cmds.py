"""Commands that act on sites: up, status, destroy, refresh, doctor.

``up`` and ``destroy`` show what they will do and ask first; ``--yes`` answers for you and is required
when stdin is not a terminal. Sites run in parallel; the exit code is 0 only if every site succeeded.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deplat import preflight
from deplat.cli import render
from deplat.cli.app import INTERRUPTED, G, app, confirm, examples, interactive
from deplat.cli.interrupt import guard
from deplat.errors import InputError

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.sites import SiteResult
    from deplat.spec.model import Site

SiteOpt = Annotated[
    list[str] | None,
    typer.Option("--site", metavar="NAME", help="Only this site (repeatable). Names cold sites too."),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; required when not at a terminal.")]
LocksOpt = Annotated[
    bool, typer.Option("--clear-locks", help="Remove state locks left by a killed deplat run (pid gone).")
]
ReplaceVmOpt = Annotated[
    bool,
    typer.Option(
        "--replace-vm",
        help="Give the named cloud sites a new VM: the image is resolved again and the bootstrap is "
        "today's. The old VM is deleted first; data volume and address move to the new one.",
    ),
]


def _secrets(spec: object) -> SecretStore:
    import getpass

    from deplat.engine import passphrase
    from deplat.secrets import SecretStore

    passphrase.set_prompt(getpass.getpass if interactive() and not G.json else None)
    return SecretStore(spec)  # type: ignore[arg-type]


def _live() -> bool:
    return G.console.is_terminal and not G.json


def _finish(
    operation: str,
    results: list[SiteResult],
    roles: dict[str, str],
    skipped: dict[str, str],
    interrupted: bool = False,
) -> None:
    from deplat.cli.render.sites import failure_lines, results_table

    failed = [r for r in results if not r.ok]
    if G.json:
        render.print_json(
            {
                "ok": not failed,
                "operation": operation,
                "sites": [r.to_dict() | {"role": roles.get(r.site, "")} for r in results],
                "skipped": skipped,
            }
        )
    else:
        G.console.print(results_table(results, roles, skipped))
        for line in failure_lines(results):
            G.err_console.print(line)
        if failed:
            names = ", ".join(r.site for r in failed)
            G.err_console.print(f"[bold red]{len(failed)} of {len(results)} sites failed[/]: {names}")
    if interrupted:
        G.err_console.print(f"canceled by Ctrl-C: run `deplat {operation}` again to finish")
        raise typer.Exit(INTERRUPTED)
    if failed:
        raise typer.Exit(1)


def _run(
    operation: str,
    names: list[str] | None,
    yes: bool,
    clear_locks: bool,
    *,
    purge_data: bool = False,
    replace_vm: bool = False,
    snapshot: bool = True,
) -> None:
    from deplat import operations
    from deplat.cli.render.sites import SiteBoard, preview_table
    from deplat.events import discard
    from deplat.operations import changes_anything, preview_sites

    spec = G.spec()
    secrets = _secrets(spec)
    if replace_vm and not names:
        raise InputError(
            "--replace-vm replaces the VM of the sites named with --site, and none is named",
            hint="deplat up --replace-vm --site NAME",
        )
    selection = operations.select_sites(spec, names, operation)
    if operation in operations.LOCKED:  # refused at once, before any question (held in operate)
        from deplat import oplock
        from deplat.errors import FilesystemError

        hint = f"wait for it to finish, then run `deplat {operation}` again"
        with contextlib.suppress(FilesystemError):  # a read-only state folder: each site says so
            oplock.refuse_if_taken(spec, "operation", hint=hint)
    if replace_vm:
        operations.refuse_vm_replacement(selection.sites)
    if not selection.sites:
        if G.json:
            render.print_json({"ok": True, "operation": operation, "sites": [], "skipped": selection.skipped})
        else:
            G.console.print(
                "no site to act on: " + "; ".join(f"{k}: {v}" for k, v in selection.skipped.items())
            )
        return
    if operation == "up":  # every secret and credential before any preview or prompt
        preflight.require("up", spec, selection.sites, secrets, can_ask=interactive() and not G.json)
        if not G.json:
            for gap in preflight.dns_gaps(spec, secrets):
                G.err_console.print(f"[yellow]note:[/] {escape(gap.message())} (a failover needs it)")
    else:
        preflight.require_sdks(operation, spec, selection.sites)
    operations.preflight(spec, selection.sites, secrets)  # the pulumi CLI; the passphrase (may ask)
    if operation == "up":
        previews = preview_sites(
            spec, selection.sites, secrets, discard, **({"replace_vm": True} if replace_vm else {})
        )
        if not G.json:
            G.console.print(preview_table(previews, selection.roles, selection.skipped))
        if replace_vm:
            vms = ", ".join(s.name for s in selection.sites)
            if not G.json:
                G.console.print(
                    f"will replace the VM of: {vms} (deleted first: the site is down until the new one "
                    "has booted; data volume and address are kept and move to it)"
                )
            confirm(f"replace the VM of {vms} and apply these changes?", yes)
        elif changes_anything(previews):
            confirm(f"apply these changes to {len(selection.sites)} site(s)?", yes)
    elif operation == "destroy":
        data = _data(selection.sites)
        if not G.json:
            G.console.print(
                "will destroy every resource of: "
                + ", ".join(f"{s.name} ({selection.roles[s.name]})" for s in selection.sites)
            )
            if data and purge_data:
                G.console.print(f"[bold red]deleted for good, with the data on them[/]: {escape(data)}")
                G.console.print(
                    "a final snapshot of each stateful service is taken first (a site whose snapshot "
                    "fails is not purged)"
                    if snapshot
                    else "[bold red]no final snapshot[/] (--no-snapshot)"
                )
            elif data:
                G.console.print(
                    "kept, with the data on them (deplat forgets cloud ones, which are still billed; "
                    f"--purge-data deletes them): {escape(data)}"
                )
        if purge_data and data:
            confirm(f"destroy {len(selection.sites)} site(s) and DELETE their data ({data})?", yes)
        else:
            confirm(f"destroy {len(selection.sites)} site(s)?", yes)
    names_run = [s.name for s in selection.sites]
    options = {"purge_data": purge_data, "replace_vm": replace_vm, "snapshot": snapshot}
    board_rows = [(s.name, selection.roles[s.name]) for s in selection.sites]
    if G.json:
        with guard(_say) as interrupted:
            results = operations.operate(
                operation, spec, names_run, secrets, discard, clear_locks=clear_locks, **options
            )
    else:
        with SiteBoard(G.console, board_rows, live=_live()) as board, guard(_say) as interrupted:
            results = operations.operate(
                operation, spec, names_run, secrets, board, clear_locks=clear_locks, **options
            )
    if operation == "up" and not G.json:  # what the config push did on each cloud site
        for r in results:
            if r.config.get("summary") and not r.config.get("error"):
                G.console.print(f"{escape(r.site)}: {escape(r.config['summary'])}")
            else:  # the push failed (the error is the site's): the services it removed all the same
                for removed in r.config.get("removed", []):
                    G.console.print(f"{escape(r.site)}: config: {escape(removed['message'])}")
    if operation == "destroy" and not G.json:
        for r in results:
            for snap in r.snapshots:
                where = f"{snap['service']}: snapshot {snap['id'][:8]} in {snap['location']}"
                G.console.print(f"final snapshot of {escape(r.site)}: {escape(where)}")
        for label in ("kept", "deleted"):
            listed = "; ".join(
                f"{r.site}: {', '.join(getattr(r, label))}" for r in results if getattr(r, label)
            )
            if listed:
                G.console.print(f"{label}: {escape(listed)}")
    _finish(operation, results, selection.roles, selection.skipped, interrupted.is_set())


def _say(text: str) -> None:
    G.err_console.print(f"[yellow]{escape(text)}[/]")


def _data(sites: list[Site]) -> str:
    """Each site's data that destroy keeps (or deletes with --purge-data), in one line."""
    from deplat.stacks.site import kept_on_destroy

    return "; ".join(f"{s.name}: {', '.join(kept_on_destroy(s))}" for s in sites if kept_on_destroy(s))


@app.command(
    epilog=examples(
        "deplat up --yes",
        "deplat up --site local-b --yes     # only this site (cold sites too)",
        "deplat -f examples/guestbook/deplat.yaml up --yes",
        "deplat up --replace-vm --site aws-fra  # a new VM: today's image, data kept",
    )
)
def up(
    site: SiteOpt = None, yes: YesOpt = False, clear_locks: LocksOpt = False, replace_vm: ReplaceVmOpt = False
) -> None:
    """Stand the app up on its sites: preview, confirm, then every site in parallel."""
    _run("up", site, yes, clear_locks, replace_vm=replace_vm)


@app.command(
    epilog=examples(
        "deplat destroy --yes",
        "deplat destroy --site local-c --yes",
        "deplat destroy --site aws-fra --purge-data  # the data volume and bucket too",
        "deplat destroy --site local-c --purge-data --no-snapshot --yes",
    )
)
def destroy(
    site: SiteOpt = None,
    yes: YesOpt = False,
    clear_locks: LocksOpt = False,
    purge_data: Annotated[
        bool,
        typer.Option(
            "--purge-data",
            help="Delete the sites' data too (data volume, backup bucket, a local site's data folder), "
            "after a final snapshot of it; without it they are kept.",
        ),
    ] = False,
    no_snapshot: Annotated[
        bool,
        typer.Option(
            "--no-snapshot",
            help="With --purge-data: no final snapshot first (a purge is otherwise refused when it fails).",
        ),
    ] = False,
) -> None:
    """Take sites down: every resource of each site is deleted, its data kept (asks first)."""
    if no_snapshot and not purge_data:
        raise InputError(
            "--no-snapshot goes with --purge-data", hint="deplat destroy --purge-data --no-snapshot"
        )
    _run("destroy", site, yes, clear_locks, purge_data=purge_data, snapshot=not no_snapshot)


@app.command(epilog=examples("deplat refresh", "deplat refresh --site aws-fra --clear-locks"))
def refresh(site: SiteOpt = None, clear_locks: LocksOpt = False) -> None:
    """Read what really exists on each site into deplat's state."""
    _run("refresh", site, True, clear_locks)


@app.command(epilog=examples("deplat status", "deplat status --site local-a --json"))
def status(site: SiteOpt = None) -> None:
    """Per site: role, whether it is deployed and running, last update, outputs."""
    from deplat import operations
    from deplat.cli.render.sites import status_table

    spec = G.spec()
    secrets = _secrets(spec)
    preflight.require_sdks("status", spec, operations.select_sites(spec, site, "status").sites)
    statuses = operations.status_sites(spec, site, secrets)
    if G.json:
        render.print_json({"ok": True, "sites": [s.to_dict() for s in statuses]})
    else:
        G.console.print(status_table(statuses))


@app.command(
    epilog=examples(
        "deplat doctor", "deplat doctor --accounts", "deplat doctor --json", "deplat doctor --install-pulumi"
    )
)
def doctor(
    install_pulumi: Annotated[
        bool, typer.Option("--install-pulumi", help="Download and install the pulumi CLI (asks first).")
    ] = False,
    accounts: Annotated[
        bool,
        typer.Option("--accounts", help="Also ask each cloud's API: account suspended, billing or API off?"),
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Is this machine ready? pulumi CLI, plugins, credentials per site, state backend, backups."""
    from deplat.cli.render.sites import doctor_table
    from deplat.engine import doctor as doc

    if install_pulumi:
        from deplat.events import Event

        def show(event: Event) -> None:
            if not G.json:
                G.err_console.print(event.message)

        confirm("download and run Pulumi's installer from https://get.pulumi.com?", yes)
        path = doc.install_pulumi(show)
        if G.json:
            render.print_json({"ok": True, "installed": path})
        else:
            G.console.print(f"installed {path}")
        return
    if G.file.exists():
        spec = G.spec()
        secrets = _secrets(spec)
        from deplat.providers import provider_of

        if any(provider_of(s).capabilities.pulumi_program for s in spec.sites):
            checks = doc.run_checks(spec, secrets, accounts=accounts)
        else:  # local sites need no engine (and a local-only install has no Pulumi SDK)
            checks = [doc.check_backend(spec)]
        checks += preflight.doctor_checks(spec, secrets, can_ask=interactive() and not G.json)
        from deplat.data import freshness

        checks += freshness.checks(spec, secrets)  # the newest snapshot of each stateful service
    else:  # no spec here: the machine-wide checks only
        checks = [doc.check_cli()[0]] if preflight.installed("pulumi") else []
        if not G.json:
            G.err_console.print(f"no spec at {G.file}: checking the pulumi CLI only (-f FILE for the rest)")
    ok = all(c.ok for c in checks if c.required)
    if G.json:
        render.print_json({"ok": ok, "checks": [c.to_dict() for c in checks]})
    else:
        G.console.print(doctor_table(checks))
    if not ok:
        raise typer.Exit(1)
