"""``deplat certs``: the app's TLS certificate (ACME DNS-01 through the spec's DNS providers).

Without ``--renew`` it obtains the certificate when none is held or it is due (names changed,
fewer than ``certificates.renew_before_days`` left) and shows it; ``--renew`` renews now;
``--check`` only shows what is held and whether it is due (no passphrase, no network).
The private key is never shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from deplat.cli import render
from deplat.cli.app import G, app, examples, interactive
from deplat.preflight import require_feature


@app.command(epilog=examples("deplat certs", "deplat certs --check --json", "deplat certs --renew"))
def certs(
    renew: Annotated[bool, typer.Option("--renew", help="Renew now, even when not due.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only show what is held and whether it is due.")
    ] = False,
) -> None:
    """Obtain or renew the app's certificate when due, and show its names, issuer and expiry."""
    import getpass

    from deplat import certs as certificates
    from deplat.engine import passphrase
    from deplat.secrets import SecretStore

    spec = G.spec()
    require_feature("certs", "certs")
    if check:
        state = certificates.status(spec)
    else:
        passphrase.set_prompt(getpass.getpass if interactive() and not G.json else None)
        secrets = SecretStore(spec)
        state = certificates.ensure(spec, secrets, force=renew)
    now = datetime.now(UTC)
    if G.json:
        render.print_json(state.to_dict(now))
        return
    info = state.info
    if info is None:
        G.console.print(f"no certificate held for {', '.join(state.names)}: {state.reason}")
        G.console.print("  run [bold]deplat certs[/] to obtain one")
        return
    days = info.days_left(now)
    rows = [
        ["names", ", ".join(info.names)],
        ["issuer", info.issuer],
        ["valid from", info.not_before.strftime("%Y-%m-%d %H:%M UTC")],
        ["expires", f"{info.not_after:%Y-%m-%d %H:%M UTC} ({days:.0f} days left)"],
        ["serial", info.serial],
        ["ACME server", info.directory],
    ]
    G.console.print(render.table(f"certificate: {state.action}", ["", ""], rows))
    if state.reason:
        verb = "due" if check else "why"
        G.console.print(f"{verb}: {state.reason}")
