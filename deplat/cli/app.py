"""The Typer app, its global options, and the one place errors become messages and exit codes.

Global options (``-f/--file``, ``--json``, ``--verbose``, ``--no-color``) may be written anywhere on
the command line: ``deplat.cli.main`` moves them in front of the subcommand before Typer parses
(``deplat.cli.argv``), and every subcommand's help lists them. Exit codes: 0 ok, 1 the operation
failed, 2 bad input or usage, 130 interrupted (Ctrl-C).

Each ``*_cmds`` module registers its commands on ``app``; running a command imports only the module
that registers it (``COMMAND_MODULES``), help without a command imports them all.

Help is click's plain formatter (through Typer, ``rich_markup_mode=None``): it fits the terminal and
costs no import of rich's Markdown and traceback machinery, so ``deplat --help`` starts fast.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from deplat import __version__
from deplat.cli import render
from deplat.cli.argv import OWN_SHORT_F, command_of
from deplat.errors import DeplatError, FilesystemError, InputError
from deplat.files import filesystem_error, local_filesystem_cause

if TYPE_CHECKING:
    from deplat.spec.model import Spec

# Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130

app = typer.Typer(
    name="deplat",
    help="Keep a web app online when a hosting provider cuts it off.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,  # tracebacks only with --verbose; locals may hold credentials
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    rich_markup_mode=None,
)


def examples(*lines: str) -> str:
    """A help epilog listing example command lines, kept as written (click's ``\\b`` marker)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@dataclass
class Globals:
    file: Path = Path("deplat.yaml")
    json: bool = False
    verbose: bool = False
    no_color: bool = False
    console: Console = field(default_factory=render.make_console)
    err_console: Console = field(default_factory=lambda: render.make_console(stderr=True))

    def spec(self) -> Spec:
        from deplat.spec import load_spec

        return load_spec(self.file)


G = Globals()


def _version(value: bool) -> None:
    if value:
        print(f"deplat {__version__}")
        raise typer.Exit()


@app.callback(
    epilog=examples(
        "deplat up -f examples/guestbook/deplat.yaml --yes",
        "deplat status --json",
        "deplat COMMAND --help",
    )
)
def root(
    file: Annotated[
        Path, typer.Option("-f", "--file", metavar="FILE", help="The app spec.", show_default=True)
    ] = Path("deplat.yaml"),
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show tracebacks and debug detail.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colors in output.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Keep a web app online when a hosting provider cuts it off: one spec, several sites,
    one-command failover."""
    G.file, G.json, G.verbose, G.no_color = file, json_out, verbose, no_color
    G.console = render.make_console(no_color=no_color)
    G.err_console = render.make_console(no_color=no_color, stderr=True)


@app.command(epilog=examples("deplat version", "deplat version --json"))
def version() -> None:
    """Show deplat's version (and Python's)."""
    python = ".".join(map(str, sys.version_info[:3]))
    if G.json:
        render.print_json({"ok": True, "version": __version__, "python": python})
    else:
        G.console.print(f"deplat {__version__} (Python {python})")


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


# ------------------------------------------------------------------ the click command tree


def _global_records(ctx: Any, command: Any) -> list[tuple[str, str]]:
    root_cmd = ctx.find_root().command
    records = []
    for param in root_cmd.params:
        if param.name not in ("file", "json_out", "verbose", "no_color"):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        if param.name == "file" and command.name in OWN_SHORT_F:
            names = names.replace("-f, ", "")
        records.append((names, help_text))
    return records


def _with_global_options(command: Any) -> None:
    """Show the global options in this subcommand's help, in their own section."""
    own = type(command).format_options

    def format_options(ctx: Any, formatter: Any) -> None:
        own(command, ctx, formatter)
        with formatter.section("Global options (anywhere on the line)"):
            formatter.write_dl(_global_records(ctx, command))

    command.format_options = format_options


def _polish(command: Any, root: bool) -> None:
    for param in command.params:
        if getattr(param, "param_type_name", "") == "argument":  # its name says it: no <str> after it
            param.display_type_rich = lambda ctx: None
            continue
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if param.metavar is None:  # Typer shows <str>, <int range>; people read NAME, SECONDS
            param.metavar = (param.name or "value").rstrip("_").upper()
    if not root:
        _with_global_options(command)
    for sub in getattr(command, "commands", {}).values():
        _polish(sub, root=False)


# The order `deplat --help` lists commands in: a newcomer's path first; others follow as registered.
ORDER = (
    "init", "validate", "show", "schema", "plan", "up", "status", "logs", "exec", "doctor", "refresh",
    "destroy", "dns", "certs", "backups", "failover", "rejoin", "watch", "drill", "version",
)  # fmt: skip


# The module of ``deplat.cli`` that registers each command (``version`` is in this one).
COMMAND_MODULES = {
    "init": "spec_cmds", "validate": "spec_cmds", "show": "spec_cmds", "schema": "spec_cmds",
    "plan": "plan_cmds", "up": "site_cmds", "status": "site_cmds", "logs": "logs_cmds", "exec": "logs_cmds",
    "doctor": "site_cmds", "refresh": "site_cmds", "destroy": "site_cmds", "dns": "dns_cmds",
    "certs": "certs_cmds", "backups": "backups_cmds", "failover": "failover_cmds",
    "rejoin": "failover_cmds", "watch": "failover_cmds", "drill": "failover_cmds",
}  # fmt: skip


@cache
def build(command: str | None = None) -> Any:
    """The click command tree Typer builds from ``app`` with ``command`` registered (every command
    when None or unknown, so help lists them all and a typo gets its "did you mean"), with deplat's
    help conventions applied."""
    wanted = COMMAND_MODULES.get(command or "")
    for module in [wanted] if wanted else sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"deplat.cli.{module}")
    tree = typer.main.get_command(app)
    _polish(tree, root=True)
    commands = getattr(tree, "commands", {})
    rank = {name: i for i, name in enumerate(ORDER)}
    ordered = sorted(commands.items(), key=lambda item: rank.get(item[0], len(ORDER)))
    commands.clear()
    commands.update(ordered)
    return tree


# Recent Typer vendors its own click (``typer._click``, whose exceptions typer exports); older ones
# raise click's: only those need click imported.
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_USAGE: tuple[type[BaseException], ...] = (typer.TyperException,)
if importlib.util.find_spec("typer._click") is None:  # pragma: no cover - depends on the Typer version
    import click

    _EXIT += (click.exceptions.Exit,)
    _ABORT += (click.exceptions.Abort,)
    _USAGE += (click.ClickException,)


def run(args: list[str]) -> int:
    """Run the CLI on ``args`` (global options hoisted: ``deplat.cli.argv``) and return the exit
    code."""
    try:
        result = build(command_of(args)).main(args=args, prog_name="deplat", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except BaseException as exc:
        return exit_code(exc)


def exit_code(exc: BaseException) -> int:
    """The exit code of a run that raised ``exc``, once what happened is said (the one error
    handler; call it while handling ``exc``)."""
    if isinstance(exc, _EXIT):
        return int(getattr(exc, "exit_code", 0) or 0)
    if isinstance(exc, SystemExit):  # e.g. Typer's --show-completion exits from its callback
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    if isinstance(exc, _ABORT):  # Ctrl-C (or end of input) at a prompt
        G.err_console.print("interrupted: nothing done")
        return INTERRUPTED
    if isinstance(exc, _USAGE):
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return 2
    if isinstance(exc, DeplatError):
        return _report(exc)
    if isinstance(exc, ModuleNotFoundError):  # an SDK a check did not foresee: name its extra
        from deplat.preflight import extra_for_module

        extra = extra_for_module(exc.name or "")
        if extra is None:
            return _internal_error(exc)
        return _report(
            InputError(
                f"the {extra} SDKs are not installed (no module {exc.name})",
                hint=f"pip install 'deplat[{extra}]'",
            )
        )
    if isinstance(exc, KeyboardInterrupt):
        G.err_console.print("stopped (second Ctrl-C): sites may be left mid-change; run the command again")
        return INTERRUPTED
    if not isinstance(exc, Exception):
        raise exc
    local = filesystem_cause(exc)
    if local is not None:  # not a bug: the local disk is full, read-only or not ours
        return _report(local)
    return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """A bug: one line, the traceback only on request."""
    if G.verbose:
        traceback.print_exception(exc)
    G.err_console.print(
        f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}"
        + ("" if G.verbose else " (run with --verbose for the traceback)")
    )
    return 1


def _report(exc: DeplatError) -> int:
    if G.verbose:
        traceback.print_exc()
    if G.json:
        render.print_json(render.error_document(exc))
    render.print_error(G.err_console, exc)
    return exc.exit_code


def filesystem_cause(exc: BaseException) -> FilesystemError | None:
    """A ``FilesystemError`` when ``exc`` (or what caused it) is an OSError of a full, read-only or
    forbidden local file system that escaped the code that hit it; None for anything else."""
    cause = local_filesystem_cause(exc)
    if cause is None:
        return None
    if cause.errno in (errno.EACCES, errno.EPERM):
        return FilesystemError(
            f"permission denied on {cause.filename}", hint="check the owner and mode of it and its folder"
        )
    if cause.filename is None:  # a write() names no file
        return FilesystemError(f"a local disk failed: {cause.strerror}", hint=_UNNAMED_HINT)
    return filesystem_error(cause, cause.filename)


_UNNAMED_HINT = "free some space, or remount it read-write, and rerun (--verbose shows where)"
