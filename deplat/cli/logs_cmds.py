"""``deplat logs``: a local site's service logs, the last lines or followed as they are written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deplat.cli import render
from deplat.cli.app import G, app, examples

if TYPE_CHECKING:
    from deplat.site_logs import LogSource


@app.command(
    epilog=examples(
        "deplat logs                    # the primary's services, last 50 lines each",
        "deplat logs local-b web -f     # follow one service (Ctrl-C stops)",
        "deplat logs local-a -n 200 --json",
    )
)
def logs(
    site: Annotated[str | None, typer.Argument(metavar="SITE", help="Default: the primary.")] = None,
    service: Annotated[str | None, typer.Argument(metavar="SERVICE", help="Default: every service.")] = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    lines: Annotated[
        int, typer.Option("-n", "--lines", metavar="N", min=0, help="Lines to show from each log first.")
    ] = 50,
) -> None:
    """Show a local site's service logs (cloud sites: not yet, they come with the SSH transport)."""
    from deplat import site_logs

    spec = G.spec()
    chosen = site_logs.sources(spec, site, service)
    several = len(chosen) > 1
    for source, line in site_logs.last_lines(chosen, lines):
        _show(source, line, several)
    if not follow:
        return
    try:
        for source, line in site_logs.follow(chosen):
            _show(source, line, several)
    except KeyboardInterrupt:  # how one stops following: not an error
        return


def _show(source: LogSource, line: str, several: bool) -> None:
    if G.json:
        render.print_json_line({"site": source.site, "service": source.service, "line": line})
    elif several:
        G.console.print(f"[dim]{escape(source.service)} |[/] {escape(line)}", highlight=False)
    else:
        G.console.print(escape(line), highlight=False)
