"""Commands that move the app: failover, watch, drill."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from deplat.cli import render
from deplat.cli.app import G, app, confirm, examples
from deplat.errors import InputError
from deplat.events import Event

MODES = ("suspended", "refused", "blackhole", "slow")


def _secrets(spec):
    from deplat.secrets import SecretStore

    return SecretStore(spec)


def _live(event: Event) -> None:
    """Timeline lines while a command runs: JSON lines with --json (to stderr for one-shot
    commands, whose stdout holds the one result document), rich lines otherwise."""
    from deplat.cli.render import failover as render_failover

    if not render_failover.wants(event, G.verbose):
        return
    render_failover.print_event(G.err_console, event)


@app.command(
    options_metavar="--to SITE [OPTIONS]",
    epilog=examples(
        "deplat failover --to local-b",
        "deplat failover --to hetzner-fsn --yes --json",
        "deplat failover --resume          # after a crash, continue from the journal",
    ),
)
def failover(
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="SITE", help="The site that takes over. [required unless --resume]"),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", metavar="SITE", help="The site being left (default: the current primary)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Go on even if the target is not ready.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the newest unfinished failover after a crash.")
    ] = False,
) -> None:
    """Move traffic and data to another site (journaled; --resume continues after a crash)."""
    from deplat.cli.render import failover as render_failover
    from deplat.failover.run import check_input, run_failover

    spec = G.spec()
    secrets = _secrets(spec)
    if not resume and not to:
        raise InputError(
            "say which site takes over: --to SITE", hint=f"sites: {', '.join(s.name for s in spec.sites)}"
        )
    if resume and to:
        raise InputError("--resume continues the journal's own failover: leave out --to")
    if not resume:
        assert to is not None
        old = check_input(spec, secrets, to, from_)  # bad input: exit 2 before asking or journaling
        confirm(
            f"Fail over from {old} to {to}? Traffic moves and {old} is fenced. If {old} answers "
            "healthy, its writes stop and its final backup is restored (planned: nothing lost); "
            "otherwise the newest periodic backup is restored (unplanned: later writes are lost).",
            yes,
        )
    emit = _live if not G.json else (lambda e: None)
    result = run_failover(spec, secrets, to=to, from_=from_, force=force, resume=resume, emit=emit)
    if G.json:
        render.print_json(result.to_dict())
    else:
        render_failover.print_failover(G.console, result)
    if not result.ok and result.outcome not in ("already",):
        raise typer.Exit(1)


@app.command(epilog=examples("deplat watch", "deplat watch --for 3600 --json > watch.jsonl"))
def watch(
    max_seconds: Annotated[
        float | None,
        typer.Option(
            "--for",
            metavar="SECONDS",
            min=0.001,
            help="Stop after this many seconds (default: until SIGTERM).",
        ),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", metavar="FILE", help="Timeline log file (default .deplat/watch.log)."),
    ] = None,
) -> None:
    """Probe every site, back up the primary, fail over by itself (when failover.auto); stop with SIGTERM."""
    from deplat import oplock
    from deplat.cli.render import failover as render_failover
    from deplat.failover.watch import Watcher

    spec = G.spec()
    secrets = _secrets(spec)

    def emit(event: Event) -> None:
        if G.json:
            render.print_json_line(render_failover.event_record(event))
        elif render_failover.wants(event, G.verbose):
            render_failover.print_event(G.console, event)

    watcher = Watcher(spec, secrets, emit=emit, log_path=log if log is not None else True)
    previous = {
        sig: signal.signal(sig, lambda s, f: watcher.stop(signal.Signals(s).name))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        # shared: watchers run side by side; a drill (which runs its own) holds it exclusively
        with oplock.hold(spec, "watch", "deplat watch", shared=True, hint="wait for the drill to finish"):
            summary = watcher.run(max_seconds=max_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not G.json:
        G.console.print(f"stopped after {summary.cycles} cycles; primary {summary.primary}")


def _resolver(value: str | None) -> tuple[str, int] | None:
    """ADDRESS, ADDRESS:PORT or [IPv6]:PORT."""
    if value is None:
        return None
    import ipaddress

    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
        return host, int(port)
    except ValueError:
        raise InputError(
            f"--resolver {value}: expected ADDRESS[:PORT]", hint="e.g. --resolver 127.0.0.1:5353"
        ) from None


@app.command(
    epilog=examples(
        "deplat drill",
        "deplat drill --max-rto 30 --max-rpo 5 --junit drill.xml",
        "deplat drill --mode blackhole --json",
    )
)
def drill(
    site: Annotated[
        str | None, typer.Option("--site", help="The site to suspend (default: the primary).")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="How the site fails: suspended | refused | blackhole | slow.")
    ] = "suspended",
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", metavar="FILE", help="Write the Markdown report here (default .deplat/drills/)."
        ),
    ] = None,
    max_rto: Annotated[
        float | None,
        typer.Option(
            "--max-rto", min=0.001, metavar="SECONDS", help="Fail (exit 1) when the RTO is longer (seconds)."
        ),
    ] = None,
    max_rpo: Annotated[
        float | None,
        typer.Option(
            "--max-rpo", min=0.001, metavar="SECONDS", help="Fail (exit 1) when the RPO is longer (seconds)."
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write the result as JUnit XML (for CI)."),
    ] = None,
    suspend_at: Annotated[
        str,
        typer.Option(
            "--suspend-at",
            metavar="random|after-backup",
            help="random: at a random point of the backup cycle; after-backup: right after one (best case).",
        ),
    ] = "random",
    stay: Annotated[
        bool, typer.Option("--stay", help="Leave the primary on the new site (default: move it back).")
    ] = False,
    resolver: Annotated[
        str | None,
        typer.Option(
            "--resolver",
            metavar="ADDRESS[:PORT]",
            help="Resolve the app's names through this caching resolver (ADDRESS[:PORT]) to measure the "
            "RTO users behind one see.",
        ),
    ] = None,
) -> None:
    """Rehearse losing the primary on local sites: timeline, detection time, RTO, RPO, data check."""
    import sys

    from deplat.cli.render import failover as render_failover
    from deplat.failover.drill import DrillOptions, run_drill

    if mode not in MODES:
        raise InputError(f"unknown --mode '{mode}'", hint=f"one of: {', '.join(MODES)}")
    if suspend_at not in ("random", "after-backup"):
        raise InputError(f"unknown --suspend-at '{suspend_at}'", hint="random or after-backup")
    options = DrillOptions(
        site=site,
        mode=mode,
        suspend_at=suspend_at.replace("-", "_"),
        max_rto=max_rto,
        max_rpo=max_rpo,
        stay=stay,
        resolver=_resolver(resolver),
        report=report,
        junit=junit,
        command=" ".join(["deplat", *sys.argv[1:]])[:200],
    )
    spec = G.spec()
    secrets = _secrets(spec)
    emit = _live if not G.json else (lambda e: None)
    result = run_drill(spec, secrets, options, emit=emit)
    if G.json:
        render.print_json(result.to_dict())
    else:
        render_failover.print_drill(G.console, result)
    if not result.ok:
        raise typer.Exit(1)


@app.command(
    epilog=examples(
        "deplat rejoin local-a",
        "deplat rejoin hetzner-fsn --yes --json",
        "deplat rejoin hetzner-fsn --accept-last-backup  # primary unreachable",
    )
)
def rejoin(
    site: Annotated[str, typer.Argument(metavar="SITE", hidden=True)],  # the docstring says what it is
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    accept_last_backup: Annotated[
        bool,
        typer.Option(
            "--accept-last-backup",
            help="When no fresh backup of the primary can be taken (a cloud primary unreachable over "
            "SSH), restore its newest periodic snapshot instead: writes made since it are missing.",
        ),
    ] = False,
) -> None:
    """Bring the fenced SITE back as a standby: its data is replaced by a fresh backup of the primary."""
    from deplat.cli.render import failover as render_failover
    from deplat.failover.rejoin import rejoin as rejoin_site

    spec = G.spec()
    secrets = _secrets(spec)
    confirm(f"Rejoin {site}? Its data is replaced by the primary's and it becomes a standby again.", yes)
    emit = _live if not G.json else (lambda e: None)
    result = rejoin_site(spec, secrets, site, emit=emit, accept_last_backup=accept_last_backup)
    if G.json:
        render.print_json(result.to_dict())
    else:
        render_failover.print_rejoin(G.console, result)
