"""deplat's command line: the Typer ``app`` (``deplat.cli.app``) and the modules registering its
commands, each imported when one of its commands runs (``COMMAND_MODULES``)."""

from deplat.cli.app import app, main, run

__all__ = ["app", "main", "run"]
