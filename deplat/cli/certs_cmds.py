"""``deplat certs``: the app's TLS certificate (ACME DNS-01 through the spec's DNS providers).

Without ``--renew`` it obtains the certificate when none is held or it is due (names changed,
fewer than ``certificates.renew_before_days`` left), installs it on every running site with a VM
(``deplat.certs.deploy``) and shows it with what each site serves; ``--renew`` renews now;
``--install`` installs the certificate held, without asking the CA; ``--site`` limits the install;
``--check`` only shows what is held and whether it is due (no passphrase, no network).
Exit 1 when a site does not serve the certificate. The private key is never shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from deplat.cli import render
from deplat.cli.app import G, app, examples, interactive
from deplat.preflight import require_feature

if TYPE_CHECKING:
    from deplat.remote.certs import SiteCertificate


@app.command(
    epilog=examples(
        "deplat certs",
        "deplat certs --check --json",
        "deplat certs --renew",
        "deplat certs --install --site aws-fra",
    )
)
def certs(
    renew: Annotated[bool, typer.Option("--renew", help="Renew now, even when not due.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only show what is held and whether it is due.")
    ] = False,
    install: Annotated[
        bool, typer.Option("--install", help="Install the certificate held on the sites, without renewing.")
    ] = False,
    sites: Annotated[
        list[str] | None, typer.Option("--site", help="Install on this site only (repeatable).")
    ] = None,
) -> None:
    """Obtain or renew the app's certificate when due, install it on every running site, and show
    its names, issuer and expiry and what each site serves."""
    import getpass

    from deplat import certs as certificates
    from deplat.certs.deploy import install_everywhere
    from deplat.engine import passphrase
    from deplat.errors import InputError, OperationFailed
    from deplat.secrets import SecretStore

    spec = G.spec()
    require_feature("certs", "certs")
    if check and (install or renew or sites):
        raise InputError("--check only shows what is held: it takes no --install, --renew or --site")
    if install and renew:
        raise InputError("--install installs the certificate held; --renew obtains a new one and installs it")
    placed: list[SiteCertificate] = []
    if check:
        state = certificates.status(spec)
    else:
        passphrase.set_prompt(getpass.getpass if interactive() and not G.json else None)
        secrets = SecretStore(spec)
        state = certificates.status(spec) if install else certificates.ensure(spec, secrets, force=renew)
        if state.info is not None:
            placed = install_everywhere(spec, secrets, sites)
        elif install:
            raise OperationFailed("deplat holds no certificate to install", hint="run `deplat certs` first")
    now = datetime.now(UTC)
    failed = [p for p in placed if not p.serving and not p.note]
    if G.json:
        document = state.to_dict(now)
        if not check:
            document["sites"] = [p.to_dict() for p in placed]
        render.print_json(document)
        if failed:
            raise typer.Exit(1)
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
    if placed:
        G.console.print(render.table("on the sites", ["site", "serves it", "detail"], _site_rows(placed)))
    if failed:
        G.err_console.print(f"[bold red]{len(failed)} site(s) do not serve the certificate[/]")
        raise typer.Exit(1)


def _site_rows(placed: list[SiteCertificate]) -> list[list[str]]:
    rows = []
    for p in placed:
        if p.note:
            rows.append([p.site, "-", p.note])
            continue
        others = [f"{name}: {seen}" for name, seen in p.names.items() if seen != "ok"]
        detail = "; ".join(filter(None, [p.error, *others])) or f"all {len(p.names)} names at {p.address}"
        rows.append([p.site, "yes" if p.serving else "NO", detail])
    return rows
