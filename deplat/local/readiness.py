"""Is a local site ready? Its services' health checks, and waiting for them after an ``up``.

``wait_ready`` polls every service's health check until all pass, the deadline passes, Ctrl-C is
pressed, or the supervisor reports a service that keeps exiting; what it returns says why not,
with the service's last log lines (secret values masked by the caller's ``mask``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat import cancel
from deplat.local import sitestate
from deplat.local.health import Check, probe
from deplat.local.launch import live_services, log_tail
from deplat.providers.local import address

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec

CRASHES_BEFORE_GIVING_UP = 3  # restarts seen while waiting for health: the service will not come up


def health_checks(spec: Spec, site: Site) -> dict[str, Check]:
    """Each service's health check, at the site's loopback address."""
    host = address(site, spec)
    return {
        name: Check(host, svc.health.port, svc.health.path, svc.health.expect, svc.health.timeout)
        for name, svc in spec.services.items()
        if svc.health is not None
    }


def healthy_now(spec: Spec, site: Site, service: str) -> bool | None:
    """Does ``service`` pass its health check right now? None when it has none."""
    check = health_checks(spec, site).get(service)
    if check is None:
        return None
    return probe(check, timeout=min(check.timeout, 1.0))[0]


def wait_ready(
    spec: Spec,
    site: Site,
    site_dir: Path,
    applied: dict[str, Any],
    health_timeout: float,
    mask: Callable[[str], str],
) -> str | None:
    """None once every health check passes; else why not, with the service's last log lines.
    ``applied`` is the supervisor's account of the services right after the apply (restart counts)."""
    checks = health_checks(spec, site)
    pending = dict(checks)
    last: dict[str, str] = {}
    deadline = time.monotonic() + health_timeout
    next_look = time.monotonic() + 0.3
    while pending:
        if cancel.requested():  # Ctrl-C: stop waiting; the services stay as they are
            return "canceled (Ctrl-C) while waiting for health checks"
        for name, check in list(pending.items()):
            remaining = max(deadline - time.monotonic(), 0.05)
            ok, last[name] = probe(check, timeout=min(check.timeout, remaining))
            if ok:
                del pending[name]
        if not pending:
            break
        if time.monotonic() > deadline:
            name = next(iter(pending))
            return _not_ready(
                site_dir,
                name,
                f"health check {checks[name].url} did not pass within {health_timeout:g} s "
                f"(last: {last[name]})",
                mask,
            )
        if time.monotonic() > next_look:
            next_look = time.monotonic() + 0.3
            problem = _crash_looping(site_dir, applied, list(pending), mask)
            if problem:
                return problem
        time.sleep(0.03)
    return _crash_looping(site_dir, applied, list(applied), mask, final=True)


def _crash_looping(
    site_dir: Path, applied: dict[str, Any], names: list[str], mask: Callable[[str], str], final: bool = False
) -> str | None:
    live = live_services(site_dir)
    if live is None:
        return "the supervisor stopped answering"
    for name in names:
        svc = live.get(name, {})
        restarts = svc.get("restarts", 0) - applied.get(name, {}).get("restarts", 0)
        bad = svc.get("state") == "failed" or restarts >= CRASHES_BEFORE_GIVING_UP
        if final:
            bad = bad or svc.get("state") in ("backoff", "failed")
        if bad:
            exit_code = svc.get("last_exit")
            return _not_ready(site_dir, name, f"keeps exiting (last exit code {exit_code})", mask)
    return None


def _not_ready(site_dir: Path, service: str, reason: str, mask: Callable[[str], str]) -> str:
    tail = log_tail(sitestate.log_path(site_dir, service))
    text = f"service {service}: {reason}"
    if tail:
        text += f"\nlast lines of {sitestate.log_path(site_dir, service)}:\n{tail}"
    return mask(text)
