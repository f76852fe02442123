"""``deplat dns sync`` without Typer or the spec model, when what it needs was kept by an earlier
command (``deplat.dns.sync_inputs`` in ``.deplat/cache/``).

Scripts and cron jobs run ``dns sync`` often; most of its start-up was importing Typer (which
imports pydantic to coerce parameters) and building the spec model, ~100 ms before a DNS packet.
This path reads the command line itself, the cached inputs, the active set and the secrets, then
syncs and shows the result with the same functions as the Typer command (``report_sync``).

It runs only a command line it reads completely (``[global options] dns sync [--timeout S]``) on
inputs it can use as they are. Anything else returns None and the Typer app runs the command
from the start: help, any other option or value, no or a stale cache entry, a primary whose
address only its driver knows (a cloud site), a missing SDK, a secrets file or active set it
cannot read. The full command then says what is wrong, exactly as without this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.cli.argv import FLAGS

if TYPE_CHECKING:
    from rich.console import Console

    from deplat.dns.switch import SwitchReport
    from deplat.dns.sync_inputs import SyncInputs
    from deplat.secrets import SecretStore
    from deplat.site_results import Addresses

#: ``deplat dns sync --timeout``'s bounds and default (the Typer command declares the same)
TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 0.1, 120.0, 5.0


@dataclass(frozen=True)
class SyncLine:
    """A ``deplat dns sync`` command line, read."""

    file: Path = Path("deplat.yaml")
    json: bool = False
    verbose: bool = False
    no_color: bool = False
    timeout: float = TIMEOUT_DEFAULT


def parse(args: list[str]) -> SyncLine | None:
    """``args`` (global options hoisted in front) as a ``dns sync`` line; None for any other."""
    file, flags, i = Path("deplat.yaml"), set(), 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg in ("-f", "--file") and i + 1 < len(args):
            file, i = Path(args[i + 1]), i + 2
        elif arg.startswith("--file="):
            file, i = Path(arg[len("--file=") :]), i + 1
        elif arg in FLAGS:
            flags.add(arg)
            i += 1
        else:
            return None
    if args[i : i + 2] != ["dns", "sync"]:
        return None
    rest, timeout = args[i + 2 :], TIMEOUT_DEFAULT
    while rest:
        if rest[0] == "--timeout" and len(rest) > 1:
            value, rest = rest[1], rest[2:]
        elif rest[0].startswith("--timeout="):
            value, rest = rest[0][len("--timeout=") :], rest[1:]
        else:
            return None
        try:
            timeout = float(value)
        except ValueError:
            return None
        if not TIMEOUT_MIN <= timeout <= TIMEOUT_MAX:  # also NaN: the Typer command explains
            return None
    return SyncLine(file, "--json" in flags, "--verbose" in flags, "--no-color" in flags, timeout)


def cached_inputs(spec_file: Path) -> SyncInputs | None:
    """What an earlier command kept for the spec file's current bytes; None when nothing usable."""
    from deplat.dns.sync_inputs import SyncInputs
    from deplat.errors import DeplatError
    from deplat.spec import cache_entry
    from deplat.spec.source import read_spec_bytes

    try:
        raw = read_spec_bytes(spec_file, str(spec_file))
    except (DeplatError, OSError):
        return None
    entry = cache_entry.read(spec_file, raw)
    kept = entry.get("dns_sync") if entry else None
    if not isinstance(kept, dict):
        return None
    try:
        return SyncInputs.from_dict(kept)
    except (TypeError, KeyError, ValueError):
        return None


def run_quick(args: list[str]) -> int | None:
    """Run ``deplat dns sync`` here and return its exit code; None: the Typer app runs ``args``."""
    line = parse(args)
    if line is None:
        return None
    inputs = cached_inputs(line.file)
    if inputs is None or not inputs.zone.providers:
        return None
    from deplat.errors import DeplatError
    from deplat.preflight import installed
    from deplat.secrets import SecretStore

    if not all(installed(module) for module in inputs.sdk_modules):
        return None
    try:
        primary = inputs.primary()
        secrets = SecretStore(secrets_file=inputs.secrets_file)
    except DeplatError:
        return None
    if primary is None:
        return None
    site, addresses = primary

    from deplat.cli import render
    from deplat.dns.switch import sync_all

    try:
        report = sync_all(inputs.zone, secrets, addresses, timeout=line.timeout)
        console = None if line.json else render.make_console(no_color=line.no_color)
        return report_sync(console, secrets, site, addresses, report)
    except BaseException as exc:  # said as the Typer app says it
        from deplat.cli.app import G, exit_code

        G.json, G.verbose, G.no_color = line.json, line.verbose, line.no_color
        G.err_console = render.make_console(no_color=line.no_color, stderr=True)
        return exit_code(exc)


def report_sync(
    console: Console | None,
    secrets: SecretStore,
    site: str,
    addresses: Addresses,
    report: SwitchReport,
) -> int:
    """Show a ``dns sync`` (both paths) as text on ``console``, or as JSON when None; return its
    exit code: 1 when a provider failed or none serves the primary."""
    from deplat.cli import render

    if console is None:
        render.print_json(secrets.masker.data({**report.to_dict(), "site": site}))
    else:
        from deplat.cli.render import dns as render_dns

        console.print(f"primary {site}: {' '.join(addresses.ipv4 + addresses.ipv6)}")
        render_dns.print_report(console, report, "DNS sync")
    return 1 if report.failed or not report.ok else 0
