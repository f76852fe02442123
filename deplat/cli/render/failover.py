"""How failovers, the watcher's timeline and drills look on a terminal (or as JSON lines)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from deplat.cli import render
from deplat.events import Event

if TYPE_CHECKING:
    from deplat.failover.drill import DrillReport
    from deplat.failover.rejoin import RejoinResult
    from deplat.failover.run import FailoverResult

# Watcher events worth a line by default; the rest (every failing probe) only with --verbose.
TIMELINE_KINDS = {
    "watch.start",
    "watch.stop",
    "watch.verdict",
    "watch.decision",
    "watch.hold",
    "watch.frontdoor",
    "watch.error",
    "watch.resume",
    "watch.backup_failed",
    "watch.failover_failed",
    "failover.begin",
    "failover.step",
    "failover.end",
    "drill.step",
    "rejoin.step",
}
_COLORS = {"done": "green", "failed": "red", "skipped": "dim", "start": "cyan"}


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


def event_record(event: Event) -> dict[str, Any]:
    """One JSON line of a timeline."""
    return {
        "at": round(event.at, 3),
        "kind": event.kind,
        "site": event.site,
        "message": event.message,
        **{
            k: v
            for k, v in event.data.items()
            if k in ("step", "status", "state", "health", "outcome", "watcher")
        },
    }


def wants(event: Event, verbose: bool) -> bool:
    if verbose:
        return True
    if event.kind == "failover.step" and event.data.get("status") == "start":
        return False
    return event.kind in TIMELINE_KINDS


def print_event(console: Console, event: Event) -> None:
    """One line of the watcher's or the failover's timeline."""
    where = f"[bold]{escape(event.site)}[/] " if event.site else ""
    message = escape(event.message)
    if event.kind == "failover.step":
        color = _COLORS.get(str(event.data.get("status")), "white")
        message = f"[{color}]{message}[/]"
    elif event.kind in ("watch.verdict", "watch.decision") or event.kind.endswith("failed"):
        message = f"[yellow]{message}[/]"
    console.print(f"[dim]{clock(event.at)}[/] {escape(event.kind):<16} {where}{message}")


def print_failover(console: Console, result: FailoverResult) -> None:
    color = "green" if result.ok else ("yellow" if result.outcome in ("already", "conflict") else "red")
    console.print(
        f"[{color}]failover {escape(result.outcome)}[/]: "
        f"{escape(result.from_site)} -> {escape(result.to_site)}"
        + (f" ({escape(result.message)})" if result.message else "")
    )
    rows = []
    for step in result.steps:
        rows.append(
            [
                step["step"],
                step["status"],
                step.get("attempts", ""),
                "" if step.get("seconds") is None else f"{step['seconds']:.2f}s",
                step.get("error") or _summary(step["step"], step.get("result") or {}),
            ]
        )
    console.print(render.table(None, ["step", "status", "runs", "time", "detail"], rows))
    if result.planned:
        console.print("RPO: 0 s (planned: the old site's writes were stopped and its final backup restored)")
    elif result.rpo_seconds is not None:
        console.print(
            f"RPO: restored data was {result.rpo_seconds:.1f}s old "
            "(unplanned: the newest periodic backup; later writes on the old site are lost)"
        )
    console.print(f"[dim]journal: {escape(result.journal)}[/]")


def print_rejoin(console: Console, result: RejoinResult) -> None:
    console.print(
        f"[green]{escape(result.site)} rejoined[/] as a {escape(result.role)} standby ({result.seconds:.1f}s)"
    )
    source = result.data_from
    rows = [["primary", result.primary], ["health", result.health]]
    if source:
        rows.append(["data", source.get("text", "")])
        if source.get("why"):
            rows.append(["no fresh backup", source["why"]])
    console.print(render.table(None, ["", "rejoin"], rows))
    if source.get("kind") == "periodic":
        console.print(
            f"[yellow]writes made on {escape(result.primary)} after that snapshot are not on "
            f"{escape(result.site)}[/]"
        )


def _summary(step: str, result: dict[str, Any]) -> str:
    if step == "decide":
        return f"{result.get('from')} -> {result.get('to')} (target {result.get('target_health')})"
    if step == "ensure_target":
        addrs = (result.get("addresses") or {}).get("ipv4", [])
        return f"{'stood up, ' if result.get('stood_up') else ''}{result.get('health')} at {', '.join(addrs)}"
    if step == "final_backup":
        return str(result.get("note") or ("planned" if result.get("planned") else "unplanned"))
    if step == "restore":
        items = result.get("restored") or []
        done = [r["service"] for r in items if r.get("backup_id")]
        missing = [r["service"] for r in items if not r.get("backup_id")]
        text = f"restored {', '.join(done)}" if done else "nothing restored"
        if missing:
            text += f"; no backup of {', '.join(missing)} (the target keeps its own data)"
        if result.get("rpo_seconds") is not None:
            text += f", RPO {result['rpo_seconds']:.1f}s"
        return text
    if step == "switch":
        if result.get("via") == "front_door":
            door = result.get("front_door") or {}
            return f"front door -> {door.get('site')}: {result.get('outcome')}"
        providers = result.get("providers") or {}
        return "DNS: " + ", ".join(f"{name} {outcome}" for name, outcome in providers.items())
    if step == "verify":
        return f"{'healthy' if result.get('healthy') else 'NOT healthy'} via {result.get('via')}"
    if step == "fence":
        return f"{result.get('fenced')} fenced; state archived to {(result.get('archive') or {}).get('path')}"
    return ""


_BAR_COLORS = ("red", "yellow", "cyan", "green")  # the same phases as the report's chart


def print_rto_bar(console: Console, report: DrillReport, width: int = 60) -> None:
    """Where the RTO went, as one bar of the phases' shares (the report's chart, in characters)."""
    from deplat.failover.drill.chart import shares

    parts = shares(report)
    if not parts:
        return
    bar, legend = "", []
    for (name, seconds, share), color in zip(parts, _BAR_COLORS, strict=False):
        cells = round(share * width)
        bar += f"[{color}]{'█' * cells}[/]"
        legend.append(f"[{color}]■[/] {escape(name)} {seconds:.2f}s ({share:.0%})")
    console.print(f"RTO  {bar}")
    console.print("     " + "  ".join(legend[:2]))
    console.print("     " + "  ".join(legend[2:]))


def print_drill(console: Console, report: DrillReport) -> None:
    color = "green" if report.ok else "red"
    console.print(
        f"[{color}]drill {'passed' if report.ok else 'FAILED'}[/]: "
        f"{escape(report.site)} {escape(report.mode)}"
        f" -> {escape(report.target or 'no failover')}  (users at {escape(report.url)})"
    )
    rows = [
        [
            m.name,
            "—" if m.at is None else clock(m.at),
            "—" if m.offset is None else f"+{m.offset:.3f}s",
            m.detail,
        ]
        for m in report.timeline
    ]
    console.print(render.table("timeline", ["event", "time", "after suspension", "detail"], rows))

    def sec(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}s"

    budgets = {b.figure: b for b in report.budgets}

    def budget(figure: str) -> str:
        b = budgets.get(figure)
        if b is None:
            return ""
        return f" [{'green' if b.ok else 'red'}](budget {b.limit:g}s)[/]"

    console.print(
        f"detection {sec(report.detection_seconds)}   RTO {sec(report.rto_seconds)}{budget('RTO')}   "
        f"RPO {sec(report.rpo_seconds)}{budget('RPO')}   data check "
        + ("[green]ok[/]" if report.data_check.ok else "[red]FAILED[/]")
    )
    print_rto_bar(console, report)
    if report.users is not None:
        console.print(
            f"users: {report.users.failed} of {report.users.requests} requests failed "
            f"(via {escape(report.users.via)})"
        )
    if report.suspend_point is not None:
        console.print(f"[dim]suspended {escape(report.suspend_point.describe())}[/]")
    for problem in report.problems:
        console.print(f"[red]- {escape(problem)}[/]")
    for change in report.changes:
        console.print(f"[yellow]- left changed: {escape(change)}[/]")
    for note in report.notes:
        console.print(f"[dim]- {escape(note)}[/]")
    for label, path in (
        ("report", report.report_path),
        ("chart", report.chart_path),
        ("junit", report.junit_path),
    ):
        if path:
            console.print(f"{label}: {escape(path)}")
