"""``deplat dns``: the traffic switch by hand: status, sync, ttl.

Every DNS provider is asked directly (its authoritative server or API, never a resolver) and
written concurrently; one that fails never stops the others. Exit code 1 when any provider could
not be read or written, or (status) when the providers disagree, so scripts notice.
"""

from __future__ import annotations

from typing import Annotated

import typer

from deplat.cli import render
from deplat.cli.app import G, app, examples
from deplat.cli.quick import TIMEOUT_DEFAULT, TIMEOUT_MAX, TIMEOUT_MIN
from deplat.errors import InputError
from deplat.preflight import require_sdks

dns_app = typer.Typer(
    name="dns",
    help="The traffic switch: the app's records on every DNS provider.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dns_app, name="dns")

TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=TIMEOUT_MIN,
        max=TIMEOUT_MAX,
        help="Seconds each DNS provider may take.",
    ),
]


@dns_app.command(epilog=examples("deplat dns status", "deplat dns status --json"))
def status(timeout: TimeoutOpt = TIMEOUT_DEFAULT) -> None:
    """What each DNS provider serves now for each name, and where they disagree."""
    from deplat.cli.render import dns as render_dns
    from deplat.dns.switch import app_names, disagreements, read_all
    from deplat.secrets import SecretStore

    spec = G.spec()
    require_sdks("dns status", spec, [], dns=True)
    secrets = SecretStore(spec)
    answers = read_all(spec, secrets, timeout=timeout)
    split = disagreements(answers)
    names = app_names(spec)
    if G.json:
        render.print_json(secrets.masker.data(render_dns.status_document(answers, split, names)))
    else:
        render_dns.print_status(G.console, answers, split, names)
    if split or not all(a.ok for a in answers):
        raise typer.Exit(1)


@dns_app.command(epilog=examples("deplat dns sync", "deplat dns sync --timeout 10"))
def sync(timeout: TimeoutOpt = TIMEOUT_DEFAULT) -> None:
    """Make every DNS provider serve the current primary's addresses (at the spec's TTL)."""
    from deplat.cli.quick import report_sync
    from deplat.dns.switch import primary_addresses, sync_all
    from deplat.secrets import SecretStore

    spec = G.spec()
    require_sdks("dns sync", spec, [], dns=True)
    secrets = SecretStore(spec)
    site, addresses = primary_addresses(spec, secrets)
    report = sync_all(spec, secrets, addresses, timeout=timeout)
    code = report_sync(None if G.json else G.console, secrets, site, addresses, report)
    if code:
        raise typer.Exit(code)


@dns_app.command(
    epilog=examples(
        "deplat dns ttl --lower --to 30   # a day before a planned move", "deplat dns ttl --restore"
    )
)
def ttl(
    lower: Annotated[bool, typer.Option("--lower", help="Lower the TTL ahead of a planned move.")] = False,
    restore: Annotated[bool, typer.Option("--restore", help="Back to the spec's domain.ttl.")] = False,
    to: Annotated[
        int | None,
        typer.Option(
            "--to", metavar="SECONDS", min=1, max=86400, help="The low TTL in seconds (default 30)."
        ),
    ] = None,
    timeout: TimeoutOpt = TIMEOUT_DEFAULT,
) -> None:
    """Rewrite the records every DNS provider serves now with a low TTL (--lower) or the spec's."""
    from deplat.cli.render import dns as render_dns
    from deplat.dns.switch import LOW_TTL, ttl_all
    from deplat.secrets import SecretStore

    if lower == restore:
        raise InputError("choose one of --lower and --restore", hint="deplat dns ttl --lower [--to 30]")
    if restore and to is not None:
        raise InputError("--to goes with --lower; --restore uses the spec's domain.ttl")
    spec = G.spec()
    require_sdks("dns ttl", spec, [], dns=True)
    secrets = SecretStore(spec)
    seconds = (to or LOW_TTL) if lower else spec.domain.ttl
    report = ttl_all(spec, secrets, seconds, timeout=timeout)
    if G.json:
        render.print_json(secrets.masker.data(report.to_dict()))
    else:
        render_dns.print_report(G.console, report, f"DNS TTL -> {seconds} s")
    if report.failed or report.conflicts:
        raise typer.Exit(1)
