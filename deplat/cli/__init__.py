"""deplat's command line. Each module registers its commands on the one Typer ``app``."""

from deplat.cli import (  # noqa: F401  (each registers its commands)
    backups_cmds,
    certs_cmds,
    dns_cmds,
    failover_cmds,
    logs_cmds,
    plan_cmds,
    site_cmds,
    spec_cmds,
)
from deplat.cli.app import app, main, run

__all__ = ["app", "main", "run"]
