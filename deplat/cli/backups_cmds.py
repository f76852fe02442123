"""``deplat backups``: what every backup repository holds now, read directly (never via a site).

Per repository and service: the newest snapshot and its age, which is the data a failover would
lose right now (the RPO). ``--check`` also runs ``restic check``. Exit 1 when a repository does
not answer or fails its check; 2 for bad input (a missing secret, a bad spec).
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from deplat.cli import render
from deplat.cli.app import G, app, examples


@app.command(epilog=examples("deplat backups", "deplat backups --check", "deplat backups --json"))
def backups(
    check: Annotated[
        bool, typer.Option("--check", help="Also run `restic check` on each repository.")
    ] = False,
) -> None:
    """Newest snapshot of each service in every backup repository, and its age (the RPO now)."""
    from deplat.data import repositories as repos
    from deplat.data.freshness import age_text
    from deplat.secrets import SecretStore
    from deplat.transport import DirectTransport

    spec = G.spec()
    secrets = SecretStore(spec)
    password = repos.password(spec, secrets)
    found = repos.repositories(spec, secrets)
    states = repos.survey(found, password, DirectTransport(spec.base_dir), app=spec.app, check=check)
    now = time.time()
    failed = repos.unreachable(states)
    stateful = [name for name, svc in spec.services.items() if svc.stateful]
    if G.json:
        render.print_json(
            secrets.masker.data(
                {
                    "ok": not failed,
                    "app": spec.app,
                    "repositories": [s.to_dict(now) for s in states],
                    "newest": {
                        service: (snap.to_dict() | {"age_seconds": round(snap.age(now), 3)})
                        if (snap := repos.newest(states, service))
                        else None
                        for service in stateful
                    },
                }
            )
        )
    else:
        rows = []
        for state in states:
            status = "ok" if state.ok else f"failed ({state.error_class})"
            if state.checked is not None:
                status += ", check " + ("passed" if state.checked else "FAILED")
            if not state.newest:
                rows.append([state.repository, state.held_by, status, "", "no snapshot", ""])
            for service, snap in sorted(state.newest.items()):
                rows.append(
                    [state.repository, state.held_by, status, service, snap.short_id, age_text(snap.age(now))]
                )
        G.console.print(
            render.table(
                f"backups of {spec.app}",
                ["repository", "held by", "status", "service", "newest", "age (RPO now)"],
                rows,
            )
        )
        for state in failed:
            G.err_console.print(f"[red]{state.repository}[/]: {secrets.masker.text(state.error or '')}")
    if failed:
        raise typer.Exit(1)
