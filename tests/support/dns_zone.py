"""The first ``dns:`` entry of a spec with the app's zone: what ``backend_for`` takes."""

from __future__ import annotations

from deplat.dns.zone import AppZone, DnsEntry
from deplat.spec.model import Spec


def first_provider(spec: Spec) -> tuple[DnsEntry, AppZone]:
    zone = AppZone.of(spec)
    return zone.providers[0], zone
