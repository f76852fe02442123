"""Events: how core code tells the CLI (or a test) what is happening, without printing.

Core functions take an ``emit`` callable and call it with ``Event``s; the CLI renders them as live
progress, plain lines or JSON lines. ``discard`` is the default when nobody listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str  # e.g. "site.op", "site.done", "probe", "failover.step", "dns.switch"
    message: str = ""
    site: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        return [e.kind for e in self.events]
