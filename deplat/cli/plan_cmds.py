"""``deplat plan``: what ``deplat up`` would create on each site."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deplat.cli import render
from deplat.cli.app import G, app, examples
from deplat.errors import InputError

if TYPE_CHECKING:
    from deplat.events import Event
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec


@app.command(
    epilog=examples(
        "deplat plan --offline -f examples/cloud/deplat.yaml  # no pulumi, no keys",
        "deplat plan --site aws-fra",
        "deplat plan --site aws-fra --replace-vm  # what `up --replace-vm` would do",
    )
)
def plan(
    site: Annotated[
        list[str] | None,
        typer.Option("--site", "-s", help="Only this site (repeatable).", show_default=False),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Run the site programs under Pulumi's mocks: no credentials, no CLI."),
    ] = False,
    replace_vm: Annotated[
        bool,
        typer.Option("--replace-vm", help="Preview `deplat up --replace-vm`: a new VM for the named sites."),
    ] = False,
) -> None:
    """Show, per site, the resources that `deplat up` would create (a `pulumi preview`, or --offline)."""
    from deplat.secrets import SecretStore

    spec = G.spec()
    known = [s.name for s in spec.sites]
    for name in site or []:
        if name not in known:
            raise InputError(f"no site named '{name}'", hint=f"sites in {G.file}: {', '.join(known)}")
    chosen = [s for s in spec.sites if s.name in site] if site else list(spec.sites)
    if replace_vm:
        from deplat.operations import refuse_vm_replacement

        if not site:
            raise InputError(
                "--replace-vm previews a new VM for the sites named with --site, and none is named",
                hint="deplat plan --replace-vm --site NAME",
            )
        if offline:
            raise InputError(
                "--replace-vm needs a real preview (the engine plans the replacement); drop --offline"
            )
        refuse_vm_replacement(chosen)
    secrets = SecretStore(spec)
    from deplat import preflight
    from deplat.providers import provider_of

    preflight.require_sdks("plan", spec, [s for s in chosen if provider_of(s).capabilities.pulumi_program])
    from deplat.remote import access

    warnings = [w for w in access.warnings(spec) if any(w.startswith(f"site {s.name}:") for s in chosen)]
    if not G.json:
        for warning in warnings:
            G.err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    if offline:
        _offline(spec, chosen, secrets, warnings)
    else:
        _preview(spec, chosen, secrets, replace_vm, warnings)


def _offline(spec: Spec, chosen: list[Site], secrets: SecretStore, warnings: list[str]) -> None:
    from deplat.cli.render.plan import print_plans
    from deplat.plan import plan_offline

    plans = plan_offline(spec, chosen, secrets)  # the SDKs were checked by `plan`
    if G.json:
        doc = {"ok": True, "offline": True, "sites": [p.to_dict() for p in plans], "warnings": warnings}
        render.print_json(secrets.masker.data(doc))
    else:
        print_plans(G.console, plans)


def _preview(
    spec: Spec, chosen: list[Site], secrets: SecretStore, replace_vm: bool, warnings: list[str]
) -> None:
    from deplat.cli.render.plan import print_plans, print_previews
    from deplat.operations import preview_sites
    from deplat.plan import plan_offline
    from deplat.providers import provider_of

    cloud = [s for s in chosen if provider_of(s).capabilities.pulumi_program]
    local = [s for s in chosen if s not in cloud]
    local_plans = plan_offline(spec, local, secrets) if local else []

    def emit(event: Event) -> None:
        if not G.json and G.verbose and event.message:
            G.err_console.print(f"[dim]{event.site or ''} {secrets.masker.text(event.message)}[/]")

    options = {"replace_vm": True} if replace_vm else {}
    results = preview_sites(spec, cloud, secrets, emit, **options) if cloud else []
    if G.json:
        doc = {
            "ok": all(r.ok for r in results),
            "offline": False,
            "sites": [r.to_dict() for r in results] + [p.to_dict() for p in local_plans],
            "warnings": warnings,
        }
        render.print_json(secrets.masker.data(doc))
    else:
        if results:
            print_previews(G.console, results)
        if local_plans:
            print_plans(G.console, local_plans)
    if any(not r.ok for r in results):
        raise typer.Exit(1)
