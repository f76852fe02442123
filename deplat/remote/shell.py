"""A cloud site's service logs and commands in its containers, over SSH (``deplat logs``, ``deplat exec``).

- Logs: the service's systemd journal on the VM (``journalctl -u deplat-SERVICE.service``; the
  container's output goes there through the unit), the last ``lines`` lines, then new ones as they
  come with ``follow`` until the caller stops (Ctrl-C closes the connection, which ends journalctl).
- Exec: ``docker exec deplat-SERVICE CMD...`` in the service's running container; its output comes
  line by line, its exit status is returned (``deplat exec`` exits with it). No terminal is
  allocated and stdin is not forwarded: commands that ask questions are not for ``exec``.

Lines from the site are masked: the service's secret values (an app may print its environment)
never reach the operator's screen or logs as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deplat.errors import InputError

if TYPE_CHECKING:
    from deplat.remote.connect import Layout, RemoteSite
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

OnLine = Callable[[str], None]


def cloud_site(spec: Spec, name: str | None) -> Site | None:
    """``name``'s site (default: the current primary) when deplat reaches it over SSH; None for a
    site on this machine; ``InputError`` for a name the spec lacks."""
    from deplat.providers import provider_of
    from deplat.state import load_active

    known = [s.name for s in spec.sites]
    chosen = name or load_active(spec).primary
    if chosen not in known:
        raise InputError(f"no site named '{chosen}'", hint=f"sites: {', '.join(known)}")
    site = spec.site(chosen)
    return None if provider_of(site).capabilities.runs_locally else site


def services_of(spec: Spec, service: str | None) -> list[str]:
    services = list(spec.services)
    if service is not None and service not in services:
        raise InputError(f"no service named '{service}'", hint=f"services: {', '.join(services)}")
    return [service] if service else services


def journal_argv(layout: Layout, services: list[str], lines: int, follow: bool) -> list[str]:
    """``journalctl`` for the services' units: the last ``lines`` lines (``-f``: then new ones)."""
    argv = [*layout.journalctl, "--no-pager", "-o", "short-iso" if len(services) == 1 else "with-unit"]
    argv += ["-n", str(lines)]
    for name in services:
        argv += ["-u", layout.unit(name)]
    return [*argv, "-f"] if follow else argv


def exec_argv(layout: Layout, service: str, command: list[str]) -> list[str]:
    return [*layout.docker, "exec", layout.container(service), *command]


def _masked(spec: Spec, secrets: SecretStore, on_line: OnLine) -> OnLine:
    for svc in spec.services.values():
        for name in svc.secrets:
            secrets.get(name)  # known values are masked from here on
    return lambda line: on_line(secrets.masker.text(line))


def read_logs(
    spec: Spec,
    remote: RemoteSite,
    secrets: SecretStore,
    services: list[str],
    on_line: OnLine,
    *,
    lines: int = 50,
    follow: bool = False,
) -> int:
    """Hand each journal line (masked) to ``on_line``; returns journalctl's exit status. With
    ``follow`` it returns only when the connection ends (the caller closes it on Ctrl-C)."""
    from deplat.errors import OperationFailed

    argv = journal_argv(remote.layout, services, lines, follow)
    done = remote.transport.run(
        argv, timeout=None if follow else 120, on_line=_masked(spec, secrets, on_line)
    )
    if not done.ok and not follow:
        raise OperationFailed(secrets.masker.text(f"on {remote.transport.where}: {done.describe()}"))
    return done.returncode


def run_in_service(
    spec: Spec,
    remote: RemoteSite,
    secrets: SecretStore,
    service: str,
    command: list[str],
    on_line: OnLine,
    *,
    timeout: float | None = None,
) -> tuple[int, str]:
    """Run ``command`` in ``service``'s container; each output line (masked) to ``on_line``.
    Returns (exit status, error output masked)."""
    if not command:
        raise InputError("no command to run", hint=f"deplat exec {remote.site} {service} -- CMD ARGS...")
    done = remote.transport.run(
        exec_argv(remote.layout, service, command), timeout=timeout, on_line=_masked(spec, secrets, on_line)
    )
    return done.returncode, secrets.masker.text(done.stderr)
