"""Where the bootstrap puts things on a cloud site's VM, and how values are quoted into its files.

Shared by ``stacks/bootstrap.py`` (the document), ``stacks/site_backups.py`` (the backup files) and
``deplat.remote`` (which reaches the same paths over SSH).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

DATA_DIR = "/srv/deplat"
CONFIG_DIR = "/etc/deplat"
BACKUP_CONF = f"{CONFIG_DIR}/restic"
UNIT_DIR = "/etc/systemd/system"
# The app's certificate, installed by deplat (deplat.remote.certs); Caddy imports TLS_SNIPPET.
TLS_DIR = f"{CONFIG_DIR}/tls"
TLS_CHAIN = "fullchain.pem"
TLS_KEY = "privkey.pem"
TLS_SNIPPET = "tls.caddy"
PACKAGES = ("docker.io", "caddy", "restic")
# What a secret stands for when its value is not known (offline plans, size checks).
PLACEHOLDER_BYTES = 64


def _secret(name: str, secret_values: Mapping[str, str] | None, what: str) -> str:
    known = (secret_values or {}).get(name)
    value = "x" * PLACEHOLDER_BYTES if known is None else known
    if "\n" in value or "\r" in value:
        raise ValueError(f"secret {name} ({what}) holds a newline, which an env file cannot carry")
    return value


def _assign(key: str, value: str) -> str:
    return f"{key}={shlex.quote(value)}"


_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def _quote(arg: str) -> str:
    """One argument of a systemd command line: specifiers (%) and variables ($) escaped."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
