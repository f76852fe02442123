"""Can deplat reach a cloud site over SSH? Port 22 is open only to the site's ``options.ssh_cidrs``.

Without them SSH stays closed: a warm cloud site then cannot receive a restore (nor a final backup be
taken from it when it is the old primary), so a planned failover onto or off it cannot move its data.
A cold site still restores the newest snapshot at its first boot. ``warnings`` says so for
``deplat validate`` and ``deplat plan``; the failover refuses with the same fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec


def is_cloud(site: Site) -> bool:
    from deplat.providers import provider_of

    return not provider_of(site).capabilities.runs_locally


def ssh_open(site: Site) -> bool:
    """Is port 22 of this cloud site open to some source range (``options.ssh_cidrs``)?"""
    return bool(site.options.get("ssh_cidrs"))


def fix(site: Site) -> str:
    return (
        f"add options.ssh_cidrs (e.g. [203.0.113.7/32], the address deplat runs from) to site "
        f"{site.name} and run `deplat up --site {site.name}`"
    )


def unreachable_data(spec: Spec) -> list[Site]:
    """Cloud sites whose stateful data deplat cannot reach: SSH closed to everyone."""
    if not any(svc.stateful for svc in spec.services.values()):
        return []
    return [s for s in spec.sites if is_cloud(s) and not ssh_open(s)]


def warnings(spec: Spec) -> list[str]:
    """One line per cloud site whose data cannot be restored while it is warm (SSH closed)."""
    return [
        f"site {s.name}: port 22 is closed (no options.ssh_cidrs), so its data cannot be restored "
        f"while it runs (warm) nor backed up for a planned failover; only a cold start restores it. "
        f"Fix: {fix(s)}"
        for s in unreachable_data(spec)
    ]
