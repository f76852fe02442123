"""The command line before any parser sees it: deplat's global options (``-f/--file``, ``--json``,
``--verbose``, ``--no-color``) may be written anywhere, and are moved in front of the subcommand
(``hoist_globals``); which command a line runs (``command_of``). Imports nothing of Typer."""

from __future__ import annotations

FLAGS = {"--json", "--verbose", "--no-color"}
VALUED = {"-f", "--file"}
# Commands with an own ``-f`` (``logs -f`` follows, as ``tail -f`` does): there the spec is ``--file``.
OWN_SHORT_F = {"logs"}


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options written after a subcommand in front of it."""
    front: list[str] = []
    rest: list[str] = []
    command: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg in FLAGS:
            front.append(arg)
        elif arg == "-f" and command in OWN_SHORT_F:
            rest.append(arg)
        elif arg in VALUED and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 1
        elif arg.startswith("--file="):
            front.append(arg)
        else:
            if command is None and not arg.startswith("-"):
                command = arg
            rest.append(arg)
        i += 1
    return front + rest


def command_of(args: list[str]) -> str | None:
    """The command ``args`` run (global options hoisted in front), or None for help, ``--version``
    and completion: those need every command."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            return None
        if arg in VALUED:
            i += 2
            continue
        if not arg.startswith("-"):
            return arg
        i += 1
    return None
