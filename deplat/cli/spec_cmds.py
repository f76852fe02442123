"""Commands about the spec itself: validate, schema, init, show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from deplat.cli import render
from deplat.cli.app import G, app, examples


@app.command(epilog=examples("deplat validate", "deplat validate -f examples/cloud/deplat.yaml --json"))
def validate() -> None:
    """Check the spec: every problem at once, each with file, line and column; then say which
    secrets, credentials and SDKs `deplat up` would miss on this machine."""
    from deplat import preflight
    from deplat.secrets import SecretStore

    spec = G.spec()
    from deplat.remote import access

    missing = preflight.gaps(spec, spec.sites, SecretStore(spec), can_ask=False, dns=True)
    warnings = access.warnings(spec)
    summary = {
        "ok": True,
        "file": str(G.file),
        "app": spec.app,
        "services": len(spec.services),
        "sites": [{"name": s.name, "provider": s.provider.value, "role": s.role.value} for s in spec.sites],
        "dns": [d.name for d in spec.dns],
        "missing": [g.to_dict() for g in missing],
        "warnings": warnings,
    }
    if G.json:
        render.print_json(summary)
        return
    n = len(spec.services)
    G.console.print(
        f"[green]ok[/]: {G.file}: app {spec.app}, {n} service{'s' * (n != 1)}, "
        f"{len(spec.sites)} sites (primary {spec.primary.name}), {len(spec.dns)} DNS providers"
    )
    if missing:
        n = len(missing)
        G.console.print(
            f"[yellow]note:[/] the spec is valid; on this machine {n} thing{'s' * (n != 1)} missing:"
        )
        for gap in missing:
            G.console.print(f"  - {escape(gap.message())}")
    for warning in warnings:
        G.console.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command(epilog=examples("deplat schema -o deplat.schema.json"))
def schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of deplat.yaml (for editors using yaml-language-server)."""
    from deplat.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        if not G.json:
            G.err_console.print(f"wrote {output}")


@app.command(epilog=examples("deplat init", "deplat init --cloud -f cloud.yaml"))
def init(
    local: Annotated[bool, typer.Option("--local", help="Sites on this machine (default).")] = False,
    cloud: Annotated[bool, typer.Option("--cloud", help="Sites on AWS, Hetzner and GCP.")] = False,
) -> None:
    """Write a commented starter spec to -f FILE (never overwrites)."""
    from deplat.errors import InputError
    from deplat.spec.starter import write_starter

    if local and cloud:
        raise InputError("choose one of --local and --cloud")
    path = write_starter(G.file, "cloud" if cloud else "local")
    if G.json:
        render.print_json({"ok": True, "file": str(path), "kind": "cloud" if cloud else "local"})
    else:
        G.console.print(f"wrote {path}; next: deplat validate -f {path}")


@app.command(epilog=examples("deplat show", "deplat show --json"))
def show() -> None:
    """Print the resolved spec: defaults filled in, secrets masked."""
    from deplat.spec.resolve import resolved

    doc = resolved(G.spec())
    if G.json:
        render.print_json(doc)
    else:
        import yaml

        typer.echo(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), nl=False)
