"""The Typer app, its global options, and the one place errors become messages and exit codes.

Global options (``-f/--file``, ``--json``, ``--verbose``, ``--no-color``) may be written anywhere on
the command line: ``main`` moves them in front of the subcommand before Typer parses.
Exit codes: 0 ok, 1 the operation failed, 2 bad input or usage.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from deplat import __version__
from deplat.cli import render
from deplat.errors import DeplatError, InputError

app = typer.Typer(
    name="deplat",
    help="Keep a web app online when a hosting provider cuts it off.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks only with --verbose; locals may hold credentials
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


@dataclass
class Globals:
    file: Path = Path("deplat.yaml")
    json: bool = False
    verbose: bool = False
    no_color: bool = False
    console: Console = field(default_factory=render.make_console)
    err_console: Console = field(default_factory=lambda: render.make_console(stderr=True))

    def spec(self):
        from deplat.spec import load_spec

        return load_spec(self.file)


G = Globals()


def _version(value: bool) -> None:
    if value:
        print(f"deplat {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    file: Annotated[Path, typer.Option("-f", "--file", help="The app spec.", show_default=True)] = Path(
        "deplat.yaml"
    ),
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show tracebacks and debug detail.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colors in output.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """deplat: one spec, several providers, one-command failover."""
    G.file, G.json, G.verbose, G.no_color = file, json_out, verbose, no_color
    G.console = render.make_console(no_color=no_color)
    G.err_console = render.make_console(no_color=no_color, stderr=True)


def interactive() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    """Ask before a change; ``--yes`` answers. Without a terminal (CI) or with --json (stdout holds
    the result document) nothing can be asked, so --yes is required: exit 2 with that hint."""
    if yes:
        return
    if G.json:
        raise InputError("--json shows no prompt, so nothing can be confirmed", hint="pass --yes to go ahead")
    if not interactive():
        raise InputError("not at a terminal, so nothing can be confirmed", hint="pass --yes to go ahead")
    if not typer.confirm(question, default=False):
        G.err_console.print("nothing done")
        raise typer.Exit(1)


_FLAGS = {"--json", "--verbose", "--no-color"}
_VALUED = {"-f", "--file"}


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options written after a subcommand in front of it."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg in _FLAGS:
            front.append(arg)
        elif arg in _VALUED and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 1
        elif arg.startswith("--file="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


# Recent Typer vendors its own click; older ones raise click's exceptions. Catch both.
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_USAGE: tuple[type[BaseException], ...] = (typer.TyperException,)
try:
    import click

    _EXIT += (click.exceptions.Exit,)
    _ABORT += (click.exceptions.Abort,)
    _USAGE += (click.ClickException,)
except ImportError:  # pragma: no cover - depends on the Typer version
    pass


def main(argv: list[str] | None = None) -> None:
    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    sys.exit(run(args))


def run(args: list[str]) -> int:
    """Run the CLI on ``args`` and return the exit code (the one error handler)."""
    try:
        result = app(args=args, prog_name="deplat", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        G.err_console.print("aborted")
        return 1
    except _USAGE as exc:
        exc.show()  # type: ignore[union-attr]
        return 2
    except DeplatError as exc:
        if G.verbose:
            traceback.print_exc()
        if G.json:
            render.print_json(render.error_document(exc))
        render.print_error(G.err_console, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        G.err_console.print("interrupted")
        return 1
    except Exception as exc:  # a bug: one line, the traceback only on request
        if G.verbose:
            traceback.print_exc()
        G.err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}"
            + ("" if G.verbose else " (run with --verbose for the traceback)")
        )
        return 1
