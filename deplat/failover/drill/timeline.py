"""The drill's timeline and figures, read from the watcher's and the failover's events (by kind).

- detection: the watcher's verdict that the drilled site is down or suspended, after the suspension;
- RTO: the users' client's first healthy answer from another site, after the suspension;
- RPO: the suspension minus the ``taken_at`` of the oldest backup the failover restored.

Only events of THIS drill's watcher count (matched by its name), so another process's failover can
never pass for this drill's; an RTO shorter than the detection is reported as a problem, never as a
figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deplat.events import Event, EventKind
from deplat.failover.drill.outcome import DrillReport, Mark, StepTime, UsersView

FINISHED = ("done", "already", "unverified")  # failover outcomes after which traffic has moved


def failover_finished(events: list[Event], watcher: str) -> bool:
    return _failover_end(events, watcher, 0.0) is not None


def _failover_end(events: list[Event], watcher: str, after: float) -> Event | None:
    """The end of the failover this drill's watcher ran (its decision names the watcher)."""
    decided = any(e.kind == EventKind.WATCH_DECISION and e.data.get("watcher") == watcher for e in events)
    if not decided:
        return None
    return next(
        (
            e
            for e in events
            if e.kind == EventKind.FAILOVER_END and e.at >= after and e.data.get("outcome") in FINISHED
        ),
        None,
    )


def _switch_detail(data: dict[str, Any]) -> str:
    if data.get("via") == "front_door":
        return f"front door: {data.get('outcome')}"
    providers = data.get("providers") or {}
    return "DNS: " + ", ".join(f"{name} {outcome}" for name, outcome in providers.items())


def fill(
    report: DrillReport, events: list[Event], suspended_at: float, users: UsersView, watcher: str
) -> None:
    """Fill the report's timeline, figures and failover steps from ``events``."""

    def first(kind: EventKind, pred: Callable[[Event], bool] = lambda e: True) -> Event | None:
        return next((e for e in events if e.kind == kind and e.at >= suspended_at and pred(e)), None)

    detection = first(
        EventKind.WATCH_VERDICT,
        lambda e: (
            e.site == report.site
            and e.data.get("watcher") == watcher
            and e.data.get("state") in ("down", "suspended")
        ),
    )
    decision = first(EventKind.WATCH_DECISION, lambda e: e.data.get("watcher") == watcher)
    switched = first(
        EventKind.FAILOVER_STEP, lambda e: e.data.get("step") == "switch" and e.data.get("status") == "done"
    )
    ended = _failover_end(events, watcher, suspended_at)
    if ended is not None:
        data = ended.data
        report.failover = {k: data.get(k) for k in ("outcome", "from_site", "to_site", "journal", "ok")}
        report.target = data.get("to_site")
        report.steps = [
            StepTime(
                str(s.get("step")),
                str(s.get("status")),
                s.get("seconds"),
                int(s.get("attempts") or 1),
            )
            for s in data.get("steps") or []
        ]
        taken = [r.get("taken_at") for r in data.get("restored") or [] if r.get("taken_at")]
        if taken:
            report.rpo_seconds = round(max(0.0, suspended_at - min(taken)), 3)
    marks = [
        ("suspension", suspended_at, f"{report.site} {report.mode}"),
        (
            "detection",
            detection.at if detection else None,
            detection.message if detection else "not detected",
        ),
        ("decision", decision.at if decision else None, decision.message if decision else "no decision"),
        (
            "switched" if report.switch == "front_door" else "DNS switched",
            switched.at if switched else None,
            _switch_detail(switched.data) if switched else "not switched",
        ),
        (
            "first healthy answer",
            users.first_healthy_at,
            f"from {users.first_healthy_site}" if users.first_healthy_site else "none",
        ),
    ]
    report.timeline = [
        Mark(name, at, None if at is None else round(at - suspended_at, 3), detail)
        for name, at, detail in marks
    ]
    report.users = users
    if detection is not None:
        report.detection_seconds = round(detection.at - suspended_at, 3)
    if users.first_healthy_at is not None:
        rto = round(users.first_healthy_at - suspended_at, 3)
        if report.detection_seconds is not None and rto < report.detection_seconds:
            report.problems.append(
                f"users saw another site ({users.first_healthy_site}) {rto:.2f} s after the suspension, "
                f"before this drill detected it ({report.detection_seconds:.2f} s): something else moved "
                "the traffic, so no RTO is reported"
            )
        elif ended is None:
            report.problems.append("users reached another site, but not through this drill's failover")
        else:
            report.rto_seconds = rto
    if detection is None:
        report.problems.append("the suspension was not detected")
    if ended is None:
        report.problems.append("no failover finished")
