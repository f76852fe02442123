"""deplat's command line: the Typer ``app`` (``deplat.cli.app``) and the modules registering its
commands, each imported when one of its commands runs (``COMMAND_MODULES``).

``main`` runs ``deplat dns sync`` from what an earlier command validated without Typer or the spec
model when it can (``deplat.cli.quick``: scripts run it often, so it starts fast), and everything
else through the Typer app. Nothing is imported here until it is used."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.cli.app import run

__all__ = ["main", "run"]


def main(argv: list[str] | None = None) -> None:
    from deplat.cli.argv import hoist_globals

    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    code = None
    if "dns" in args and "sync" in args:  # other commands never load the quick path
        from deplat.cli.quick import run_quick

        code = run_quick(args)
    if code is None:
        from deplat.cli.app import run

        code = run(args)
    if code == 130:  # interrupted (deplat.cli.app.INTERRUPTED)
        # A second Ctrl-C stops at once: do not wait for site threads still winding down.
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def __getattr__(name: str) -> Any:
    if name == "run":  # the Typer app's runner (``deplat.cli.app.run``; the app is its ``app``)
        from deplat.cli.app import run

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
