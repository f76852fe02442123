"""Events: how core code tells the CLI (or a test) what is happening, without printing.

Core functions take an ``emit`` callable and call it with ``Event``s; the CLI renders them as live
progress, plain lines or JSON lines. ``discard`` is the default when nobody listens.

Every event has a kind from ``EventKind``: consumers (the renderers, the drill, tests) match on the
kind and read ``data``, never the human ``message``. ``EventKind`` is a ``StrEnum``, so a kind also
compares equal to its string (``EventKind.SITE_DONE == "site.done"``) and serialises as it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    # one site's operation (up, destroy, refresh, preview) through its driver
    SITE_START = "site.start"
    SITE_OP = "site.op"  # a resource step: data.op, data.type, data.urn
    SITE_DIAG = "site.diag"  # an engine diagnostic: data.severity
    SITE_NOTE = "site.note"
    SITE_SUMMARY = "site.summary"  # data.changes
    SITE_ERROR = "site.error"
    SITE_SKIPPED = "site.skipped"
    SITE_DONE = "site.done"
    SITE_FAILED = "site.failed"
    SITE_END = "site.end"
    RUN_INTERRUPT = "run.interrupt"  # the first Ctrl-C of a many-site run: sites cancel cleanly
    # data
    BACKUP_DONE = "backup.done"
    BACKUP_SKIP = "backup.skip"
    RESTORE_DONE = "restore.done"
    RESTORE_MISSING = "restore.missing"
    # the app's certificate onto a site: data is a deplat.remote.certs.SiteCertificate (no key)
    CERT_INSTALL = "cert.install"
    # traffic
    DNS_READ = "dns.read"
    DNS_SWITCH = "dns.switch"
    DNS_SYNC = "dns.sync"
    DNS_TTL = "dns.ttl"
    # failover
    FAILOVER_BEGIN = "failover.begin"
    FAILOVER_STEP = "failover.step"  # data.step, data.status: start | done | failed | skipped
    FAILOVER_END = "failover.end"  # data: the FailoverResult
    # watch
    WATCH_START = "watch.start"
    WATCH_STOP = "watch.stop"
    WATCH_PROBE = "watch.probe"
    WATCH_VERDICT = "watch.verdict"
    WATCH_DECISION = "watch.decision"
    WATCH_HOLD = "watch.hold"
    WATCH_RESUME = "watch.resume"
    WATCH_BACKUP = "watch.backup"
    WATCH_BACKUP_FAILED = "watch.backup_failed"
    WATCH_FAILOVER_FAILED = "watch.failover_failed"
    WATCH_FRONTDOOR = "watch.frontdoor"
    WATCH_ERROR = "watch.error"
    WATCH_LOG = "watch.log"
    WATCH_FENCED_HEALTHY = "watch.fenced_healthy"  # a fenced site answers healthy again
    # front door, rejoin
    FRONTDOOR_START = "frontdoor.start"
    CONFIG_PUSH = "config.push"  # data: deplat.remote.config.Pushed (files written, services restarted)
    REJOIN_STEP = "rejoin.step"
    # drill, doctor
    DRILL_STEP = "drill.step"
    DOCTOR_INSTALL = "doctor.install"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    message: str = ""
    site: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data


Emit = Callable[[Event], None]


def discard(event: Event) -> None:
    """An ``Emit`` that drops every event."""


class Recorder:
    """An ``Emit`` that keeps every event (tests, and commands that report at the end)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [str(e.kind) for e in self.events]

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind == kind]
