"""A cloud site's services over SSH: stop, start, restart, wait until healthy, and the backup timers.

Each service runs as ``deplat-<service>.service`` under systemd on the VM (``stacks/bootstrap.py``);
deplat drives it with ``systemctl`` (``Layout.systemctl``) through the site's transport. A service is
healthy when its declared health check passes when run ON the VM (``curl``, else ``wget``, against
``Layout.service_host``: the check sees what the VM's own front sees, not the operator's network),
or, without a health check, when systemd says it is active.

The backup timers (``deplat-backup@<service>.timer``) run on the primary only: ``backup_timers``
turns them on (unmask, enable, start) or off (disable, stop, mask: a masked timer stays off even when
its service's unit ``Wants=`` it, after a reboot too).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from deplat.errors import OperationFailed

if TYPE_CHECKING:
    from deplat.remote.connect import RemoteSite
    from deplat.spec.model import Service, Spec

POLL = 0.25  # seconds between two health checks of a service that is not healthy yet
COMMAND_TIMEOUT = 120.0  # one systemctl call (a stop waits for the container to exit)


def timer(service: str) -> str:
    """The backup timer of ``service`` (an instance of ``deplat-backup@.timer``)."""
    return f"deplat-backup@{service}.timer"


def _systemctl(remote: RemoteSite, *args: str, timeout: float = COMMAND_TIMEOUT) -> None:
    argv = [*remote.layout.systemctl, *args]
    done = remote.transport.run(argv, timeout=timeout)
    if not done.ok:
        raise OperationFailed(f"on {remote.site} ({remote.transport.where}): {done.describe()}")


def _units(remote: RemoteSite, services: Iterable[str]) -> list[str]:
    return [remote.layout.unit(name) for name in services]


def active(remote: RemoteSite, service: str) -> bool:
    """Does systemd on the site say the service's unit is active?"""
    argv = [*remote.layout.systemctl, "is-active", "--quiet", remote.layout.unit(service)]
    return remote.transport.run(argv, timeout=30).ok


def health_command(remote: RemoteSite, name: str, service: Service) -> list[str]:
    """The command run ON the site that exits 0 when ``service`` is healthy."""
    health = service.health
    if health is None:
        return [*remote.layout.systemctl, "is-active", "--quiet", remote.layout.unit(name)]
    url = f"http://{remote.layout.service_host}:{health.port}{health.path}"
    limit = f"{max(1, round(health.timeout))}"
    script = (
        "if command -v curl >/dev/null 2>&1; then\n"
        f"  code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time {limit} {shlex.quote(url)} || true)\n"
        "else\n"
        f"  code=$(wget -q -S -O /dev/null -T {limit} -t 1 {shlex.quote(url)} 2>&1 "
        "| awk '/^  HTTP\\//{c=$2} END{print c}')\n"
        "fi\n"
        f'[ "$code" = "{health.expect}" ]\n'
    )
    return ["sh", "-c", script]


def wait_healthy(remote: RemoteSite, spec: Spec, services: list[str], timeout: float) -> list[str]:
    """The services that are healthy within ``timeout`` seconds (checked on the site)."""
    deadline = time.monotonic() + timeout
    waiting = list(services)
    healthy: list[str] = []
    while waiting:
        for name in list(waiting):
            check = health_command(remote, name, spec.services[name])
            if remote.transport.run(check, timeout=30).ok:
                healthy.append(name)
                waiting.remove(name)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return [name for name in services if name in healthy]


def stop(remote: RemoteSite, services: list[str], timeout: float) -> list[str]:
    """Stop ``services`` (their containers have exited when systemctl returns, so their data
    folders hold everything they acknowledged); returns the ones systemd reports stopped."""
    if not services:
        return []
    _systemctl(remote, "stop", *_units(remote, services), timeout=max(timeout, 30.0))
    return [name for name in services if not active(remote, name)]


def start(remote: RemoteSite, spec: Spec, services: list[str], timeout: float) -> list[str]:
    """Start ``services``; returns the ones healthy within ``timeout`` seconds."""
    if not services:
        return []
    _systemctl(remote, "start", *_units(remote, services), timeout=max(timeout, 30.0))
    return wait_healthy(remote, spec, services, timeout)


def restart(remote: RemoteSite, spec: Spec, services: list[str], timeout: float) -> list[str]:
    """Restart ``services`` (e.g. after their data was replaced); returns the healthy ones."""
    if not services:
        return []
    _systemctl(remote, "restart", *_units(remote, services), timeout=max(timeout, 30.0))
    return wait_healthy(remote, spec, services, timeout)


def backup_timers(remote: RemoteSite, services: list[str], on: bool) -> list[str]:
    """Turn the backup timers of ``services`` on (the site is the primary) or off (it is not);
    returns the timers switched."""
    timers = [timer(name) for name in services]
    if not timers:
        return []
    if on:
        _systemctl(remote, "unmask", *timers)
        _systemctl(remote, "enable", "--now", *timers)
    else:
        _systemctl(remote, "disable", "--now", *timers)
        _systemctl(remote, "mask", *timers)
    return timers
