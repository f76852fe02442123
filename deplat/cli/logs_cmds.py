"""``deplat logs`` (a site's service logs, the last lines or followed as they are written) and
``deplat exec`` (a command in a cloud site's service container). Local sites' logs are files here
(``deplat.site_logs``); cloud sites' come over SSH (``deplat.remote.shell``)."""

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
        "deplat logs aws-fra web -f          # a cloud site's journal, over SSH",
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
    """Show a site's service logs (cloud sites: their journal, over SSH)."""
    from deplat import site_logs
    from deplat.remote import shell

    spec = G.spec()
    cloud = shell.cloud_site(spec, site)
    if cloud is not None:
        _cloud_logs(cloud.name, service, lines, follow)
        return
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


def _cloud_logs(site: str, service: str | None, lines: int, follow: bool) -> None:
    from deplat.cli.site_cmds import _secrets
    from deplat.remote import open_site, shell

    spec = G.spec()
    services = shell.services_of(spec, service)
    secrets = _secrets(spec)
    label = service or "*"

    def show(line: str) -> None:
        if G.json:
            render.print_json_line({"site": site, "service": label, "line": line})
        else:
            G.console.print(escape(line), highlight=False)

    with open_site(spec, spec.site(site), secrets) as remote:
        try:
            shell.read_logs(spec, remote, secrets, services, show, lines=lines, follow=follow)
        except KeyboardInterrupt:  # how one stops following: not an error
            return


@app.command(
    "exec",
    epilog=examples(
        "deplat exec aws-fra web -- ls -l /data",
        "deplat exec gcp-iowa db -- pg_dump -U app app > dump.sql",
        "deplat exec aws-fra web -- sh -c 'echo $HOSTNAME'",
    ),
)
def exec_(
    site: Annotated[str, typer.Argument(metavar="SITE", help="A cloud site.")],
    service: Annotated[str, typer.Argument(metavar="SERVICE")],
    command: Annotated[list[str], typer.Argument(metavar="-- CMD...", help="The command and its arguments.")],
) -> None:
    """Run a command in a cloud site's service container, over SSH; exits with the command's status.

    Output comes as it is printed; no terminal and no stdin (nothing interactive). Local sites run
    their services as processes on this machine: run the command there yourself.
    """
    from deplat.cli.site_cmds import _secrets
    from deplat.errors import InputError
    from deplat.remote import open_site, shell

    spec = G.spec()
    cloud = shell.cloud_site(spec, site)
    if cloud is None:
        raise InputError(
            f"{site} is a local site: its services are processes on this machine, not containers",
            hint="run the command yourself (its files: .deplat/local/" + site + "/); "
            "`deplat logs " + site + "` shows its output",
        )
    shell.services_of(spec, service)
    secrets = _secrets(spec)
    out: list[str] = []

    def show(line: str) -> None:
        if G.json:
            out.append(line)
        else:
            G.console.print(escape(line), highlight=False, soft_wrap=True)

    with open_site(spec, cloud, secrets) as remote:
        status, errors = shell.run_in_service(spec, remote, secrets, service, command, show)
    if G.json:
        render.print_json(
            {
                "ok": status == 0,
                "site": site,
                "service": service,
                "exit": status,
                "stdout": out,
                "stderr": errors,
            }
        )
    elif errors:
        G.err_console.print(escape(errors.rstrip("\n")), highlight=False)
    if status:
        raise typer.Exit(status)


def _show(source: LogSource, line: str, several: bool) -> None:
    if G.json:
        render.print_json_line({"site": source.site, "service": source.service, "line": line})
    elif several:
        G.console.print(f"[dim]{escape(source.service)} |[/] {escape(line)}", highlight=False)
    else:
        G.console.print(escape(line), highlight=False)
