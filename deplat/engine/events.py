"""Pulumi engine events -> deplat ``Event``s, with counts per operation and every secret masked.

The Automation API calls ``on_event`` on a worker thread and turns exceptions raised inside it into
silent warnings, so ``EventTranslator.__call__`` never raises: a bad event becomes a warning event.

Kinds emitted (all carry ``site``):
    site.op       a resource step started      data: op, type, name, counts
    site.done     a resource step finished     data: op, type, name, counts
    site.failed   a resource step failed       data: op, type, name
    site.diag     an error or warning message  data: severity
    site.summary  the engine's summary         data: changes, seconds
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from deplat.events import Emit, Event, EventKind

# Engine ops that are steps in the output (reads and "same" count, but are not worth a line).
QUIET_OPS = {"same", "read", "refresh"}


def resource_name(urn: str) -> str:
    """The logical name at the end of ``urn:pulumi:stack::project::type::name``."""
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


class EventTranslator:
    """Callable given to ``stack.up(on_event=...)``: translates, counts, masks, forwards."""

    def __init__(self, site: str, emit: Emit, mask: Callable[[str], str] = lambda s: s) -> None:
        self.site = site
        self.emit = emit
        self.mask = mask
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.summary: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        try:
            self._translate(event)
        except Exception as exc:  # never raise into the SDK's worker thread
            self._send(
                EventKind.SITE_DIAG, f"unreadable engine event: {type(exc).__name__}", severity="warning"
            )

    def _send(self, kind: EventKind, message: str, **data: Any) -> None:
        self.emit(Event(kind=kind, message=self.mask(message), site=self.site, data=data))

    def _translate(self, event: Any) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            op = _op(meta.op)
            if meta.type == "pulumi:pulumi:Stack":
                return
            name = resource_name(meta.urn)
            self._send(
                EventKind.SITE_OP,
                f"{op} {meta.type} {name}",
                op=op,
                type=meta.type,
                name=name,
                counts=dict(self.counts),
                quiet=op in QUIET_OPS,
            )
        elif event.res_outputs_event is not None:
            meta = event.res_outputs_event.metadata
            op = _op(meta.op)
            if meta.type == "pulumi:pulumi:Stack":
                return
            with self._lock:
                self.counts[op] = self.counts.get(op, 0) + 1
                counts = dict(self.counts)
            name = resource_name(meta.urn)
            self._send(
                EventKind.SITE_DONE,
                f"{op} {meta.type} {name} done",
                op=op,
                type=meta.type,
                name=name,
                counts=counts,
                quiet=op in QUIET_OPS,
            )
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            name = resource_name(meta.urn)
            self._send(
                EventKind.SITE_FAILED,
                f"{_op(meta.op)} {meta.type} {name} failed",
                op=_op(meta.op),
                type=meta.type,
                name=name,
            )
        elif event.diagnostic_event is not None:
            diag = event.diagnostic_event
            severity = diag.severity or "info"
            text = (diag.message or "").strip()
            if not text or severity.startswith("info") or severity == "debug":
                return
            if severity == "error":
                with self._lock:
                    self.errors.append(self.mask(text))
            self._send(EventKind.SITE_DIAG, text, severity=severity)
        elif event.summary_event is not None:
            changes = {str(_op(k)): int(v) for k, v in (event.summary_event.resource_changes or {}).items()}
            self.summary = changes
            self._send(
                EventKind.SITE_SUMMARY,
                _describe(changes),
                changes=changes,
                seconds=event.summary_event.duration_seconds,
            )


def _op(op: Any) -> str:
    return str(getattr(op, "value", op))


def _describe(changes: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in sorted(changes.items())) or "no changes"
