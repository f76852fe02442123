"""deplat's command line. Each module registers its commands on the one Typer ``app``."""

from deplat.cli import spec_cmds  # noqa: F401  (registers commands)
from deplat.cli.app import app, main, run

__all__ = ["app", "main", "run"]
