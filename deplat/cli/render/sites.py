"""Showing many sites at once: live progress from their events, and the closing tables.

``SiteBoard`` is an ``Emit``: at a terminal it keeps a rich ``Live`` table with one row per site
(state, current operation, counts, last error); elsewhere it prints one plain line per notable event,
so that logs of CI runs read well. The tables (preview, results, status, doctor) are plain data -> rich.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from deplat.errors import ErrorClass
from deplat.events import Event
from deplat.sites import SiteResult, SiteStatus

STYLE = {"waiting": "dim", "running": "cyan", "ok": "green", "failed": "bold red", "skipped": "dim"}


def describe_changes(changes: dict[str, Any]) -> str:
    parts = [f"{n} {op}" for op, n in sorted(changes.items()) if n]
    return ", ".join(parts) or "no changes"


def error_words(error_class: str | None) -> str:
    """The class in words; a word deplat does not know (an older journal's) as it is."""
    known = ErrorClass.of(error_class)
    return known.words if known else error_class or "failed"


@dataclass
class _Row:
    site: str
    role: str
    state: str = "waiting"
    current: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    started: float | None = None


class SiteBoard:
    """Live per-site progress (a terminal) or plain lines (anything else), fed by events."""

    def __init__(self, console: Console, sites: Sequence[tuple[str, str]], *, live: bool) -> None:
        self.console = console
        self.rows = {name: _Row(name, role) for name, role in sites}
        self.live_mode = live
        self._live: Live | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> SiteBoard:
        if self.live_mode:
            self._live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            already_shown = bool(event.site and event.site in self.rows and self.rows[event.site].error)
            self._apply(event)
            if self._live is not None:
                self._live.update(self._render())
            else:
                self._line(event, already_shown)

    def _apply(self, event: Event) -> None:
        if event.site is None:
            return
        row = self.rows.setdefault(event.site, _Row(event.site, event.data.get("role", "")))
        kind = event.kind
        if kind == "site.start":
            row.state, row.started = "running", time.monotonic()
        elif kind == "site.skipped":
            row.state, row.current = "skipped", event.message
        elif kind in ("site.op", "site.done"):
            row.current = event.message
            row.counts = dict(event.data.get("counts") or row.counts)
        elif kind == "site.summary":
            row.counts = dict(event.data.get("changes") or row.counts)
            row.current = event.message
        elif kind in ("site.error",) or (kind == "site.diag" and event.data.get("severity") == "error"):
            row.error = event.message
        elif kind == "site.end":
            row.state = "ok" if event.data.get("ok") else "failed"
            row.counts = dict(event.data.get("changes") or row.counts)
            row.current = "done" if row.state == "ok" else row.current
            if row.state == "failed" and not row.error:
                row.error = event.message
        elif event.message:
            row.current = event.message

    def _line(self, event: Event, error_shown: bool = False) -> None:
        if event.kind == "site.done" or event.data.get("quiet"):
            return
        if not event.message:
            return
        if event.kind == "site.end":
            ok = bool(event.data.get("ok"))
            words = "" if ok else f" ({error_words(event.data.get('error_class'))})"
            detail = "" if ok or error_shown else f": {event.message}"
            event = Event(event.kind, ("done" if ok else "failed") + words + detail, event.site, event.data)
        prefix = f"[bold]{escape(event.site)}[/]: " if event.site else ""
        style = ""
        if event.kind == "site.error" or (
            event.kind == "site.diag" and event.data.get("severity") == "error"
        ):
            style = "red"
        elif event.kind == "site.end":
            style = "green" if event.data.get("ok") else "bold red"
        text = escape(event.message)
        self.console.print(f"{prefix}[{style}]{text}[/]" if style else f"{prefix}{text}")

    def _render(self) -> RenderableType:
        t = Table(header_style="bold", title_justify="left")
        for col in ("site", "role", "state", "now", "changes", "error"):
            t.add_column(col, overflow="fold")
        for row in self.rows.values():
            elapsed = (
                f" {time.monotonic() - row.started:.0f}s" if row.started and row.state == "running" else ""
            )
            t.add_row(
                escape(row.site),
                escape(row.role),
                f"[{STYLE.get(row.state, '')}]{row.state}{elapsed}[/]",
                escape(row.current[:80]),
                escape(describe_changes(row.counts)) if row.counts else "",
                f"[red]{escape(row.error[:120])}[/]" if row.error else "",
            )
        return t


WRAPPING = {"note", "error", "detail", "hint"}
WHOLE = {"site", "provider", "role", "state", "updated", "result"}  # short: never wrapped


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    """Like ``render.table``, but made to fit 80 columns: no vertical rules; a cell wraps only at
    spaces, never inside a word (a column is at least as wide as its longest word: names, roles,
    addresses and URLs stay whole); free text (notes, errors) takes what is left."""
    t = Table(title=title, title_justify="left", header_style="bold underline", box=None, pad_edge=False)
    for i, col in enumerate(columns):
        cells = [str(r[i] or "") for r in rows]
        if col in WRAPPING:
            t.add_column(col, overflow="fold", ratio=1)
        elif col in WHOLE:
            t.add_column(col, min_width=max([len(col), *map(len, cells)]), no_wrap=True)
        else:
            words = [len(w) for c in cells for w in c.split()]
            t.add_column(col, min_width=max([len(col), *words]), overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else escape(str(v)) for v in row))
    return t


def address_of(outputs: dict[str, Any]) -> str:
    for key in ("ipv4", "address", "host", "ipv6"):
        value = outputs.get(key)
        if value:
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


def url_of(outputs: dict[str, Any]) -> str:
    value = outputs.get("url") or outputs.get("urls")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value) if value else ""


def where(outputs: dict[str, Any]) -> str:
    """The URL, and the address when the URL does not already show it (a cloud site's domain)."""
    address, url = address_of(outputs), url_of(outputs)
    return url if address and address in url else " ".join(filter(None, [address, url]))


def preview_table(previews: Sequence[SiteResult], roles: dict[str, str], skipped: dict[str, str]) -> Table:
    rows: list[list[Any]] = []
    for p in previews:
        what = describe_changes(p.changes) if p.ok else f"preview failed ({error_words(p.error_class)})"
        rows.append([p.site, roles.get(p.site, ""), what, p.error or ""])
    for name, reason in skipped.items():
        rows.append([name, roles.get(name, ""), "skipped", reason])
    return table("plan", ["site", "role", "changes", "note"], rows)


def results_table(
    results: Sequence[SiteResult], roles: dict[str, str], skipped: dict[str, str] | None = None
) -> Table:
    rows: list[list[Any]] = []
    for r in results:
        outcome = "ok" if r.ok else f"FAILED: {r.error_class or 'error'}"  # in words under the table
        rows.append(
            [
                r.site,
                roles.get(r.site, ""),
                outcome,
                describe_changes(r.changes),
                where(r.outputs),
            ]
        )
    for name in skipped or {}:
        rows.append([name, roles.get(name, ""), "skipped", "", ""])
    return table(None, ["site", "role", "result", "changes", "where"], rows)


def failure_lines(results: Sequence[SiteResult]) -> list[str]:
    """One line (rich markup) per failed site: the class in words, the message, then the hint."""
    lines = []
    for r in results:
        if r.ok:
            continue
        lines.append(
            f"[bold red]{escape(r.site)}[/]: {escape(error_words(r.error_class))}: {escape(r.error or '')}"
        )
        known = ErrorClass.of(r.error_class)
        hint = known.hint if known else None
        if hint:
            lines.append(f"  [dim]hint:[/] {escape(hint)}")
    return lines


def ago(when: float, now: float | None = None) -> str:
    """A time as people read it: relative when recent, else a date with its zone."""
    seconds = (time.time() if now is None else now) - when
    if seconds < 0 or seconds >= 7 * 86400:
        return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(when))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return "just now" if seconds < 5 else f"{int(seconds)} s ago"


def _state(s: SiteStatus) -> str:
    if s.running:
        return "running"
    return "stopped" if s.exists else "none"


def status_table(statuses: Sequence[SiteStatus], now: float | None = None) -> RenderableType:
    """One row per site within 80 columns (times read "3 min ago"); notes go below the table."""
    rows: list[list[Any]] = []
    notes: list[str] = []
    for s in statuses:
        note = s.detail.get("error") or s.detail.get("skipped") or "; ".join(s.detail.get("locks", []))
        if note:
            notes.append(f"[bold]{escape(s.site)}[/]: {escape(note)}")
        updated = ago(s.last_update, now) if s.last_update else ""
        rows.append([s.site, s.provider, s.role, _state(s), updated, where(s.outputs)])
    columns = ["site", "provider", "role", "state", "updated", "where"]
    return Group(table(None, columns, rows), *notes) if notes else table(None, columns, rows)


def doctor_table(checks: Sequence[Any]) -> Table:
    """A list rather than a grid: the verdict and the check's name never wrap, and the detail and
    hint get the rest of the line, so paths, URLs and variable names stay whole where they fit."""
    t = Table(title="deplat doctor", title_justify="left", box=None, show_header=False, padding=(0, 1))
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold", ratio=1)
    for c in checks:
        verdict = "ok" if c.ok else ("FAIL" if getattr(c, "required", True) else "warn")
        style = {"ok": "green", "FAIL": "bold red", "warn": "yellow"}[verdict]
        text = escape(c.detail) + (f"\n[dim]hint:[/] {escape(c.hint)}" if c.hint else "")
        t.add_row(f"[{style}]{verdict}[/]", escape(c.name), text)
    return t
