"""What a drill found: the figures, the timeline, what users saw, the data check, the budgets.

Plain data (dataclasses) so the CLI can print it, ``--json`` can dump it and the report writers
(Markdown, the chart, JUnit) can render it, without any of them reading events again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Mark:
    """One moment of the timeline."""

    name: str
    at: float | None
    offset: float | None  # seconds after the suspension
    detail: str = ""


@dataclass
class StepTime:
    """One step of the failover, and how long it took."""

    step: str
    status: str
    seconds: float | None
    attempts: int = 1


@dataclass
class UsersView:
    """What a client asking the app the way users do saw from the suspension on."""

    via: str  # the front door's URL, or "DNS through <resolver>"
    requests: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # what went wrong -> how often
    first_failure_at: float | None = None
    last_failure_at: float | None = None
    first_healthy_at: float | None = None  # the first healthy answer from another site
    first_healthy_site: str | None = None
    resolver_caches: bool = False  # names came through a caching resolver (the TTL counts)


@dataclass
class ServiceData:
    """One stateful service's data: fingerprinted before the suspension, compared after."""

    service: str
    files: int  # files fingerprinted before the suspension
    bytes: int
    same: int = 0  # same content on the new primary
    grown: int = 0  # an append-only file: the old content is a prefix of the new one
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.changed


@dataclass
class CommandRun:
    """One of the app's declared drill commands (``drill.write`` / ``drill.check``)."""

    name: str
    argv: list[str]
    exit_code: int | None
    seconds: float
    output: str = ""  # the last lines of its output, secret values masked

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class DataCheck:
    ok: bool = False
    services: list[ServiceData] = field(default_factory=list)
    commands: list[CommandRun] = field(default_factory=list)
    note: str = ""


@dataclass
class Budget:
    figure: str  # RTO | RPO
    limit: float
    value: float | None

    @property
    def ok(self) -> bool:
        return self.value is not None and self.value <= self.limit


@dataclass
class SuspendPoint:
    """When, within the backup cycle, the site was lost."""

    how: str  # random | after_backup
    after_backup: float  # seconds between the last backup's start and the suspension
    interval: float  # backups.interval

    def describe(self) -> str:
        if self.how == "random":
            return (
                f"at a random point of the backup cycle: {self.after_backup:.2f} s after the last "
                f"backup started (interval {self.interval:g} s; the worst case loses up to one "
                "interval plus a backup's duration)"
            )
        return (
            f"right after a fresh backup ({self.after_backup:.2f} s after it started): the best case; "
            f"at a random moment up to {self.interval:g} s more of writes could be lost"
        )


@dataclass
class DrillReport:
    ok: bool
    site: str  # the drilled (suspended) site
    target: str | None  # where the watcher failed over to
    mode: str
    switch: str  # dns | front_door
    url: str  # where users reach the app
    version: str = ""
    timeline: list[Mark] = field(default_factory=list)
    steps: list[StepTime] = field(default_factory=list)
    detection_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    suspend_point: SuspendPoint | None = None
    users: UsersView | None = None
    data_check: DataCheck = field(default_factory=DataCheck)
    budgets: list[Budget] = field(default_factory=list)
    failover: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    ttl: int | None = None  # the app's records' TTL (DNS switch)
    changes: list[str] = field(default_factory=list)  # what the drill left changed
    problems: list[str] = field(default_factory=list)  # why it failed
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None
    chart_path: str | None = None
    junit_path: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def over_budget(self) -> list[Budget]:
        return [b for b in self.budgets if not b.ok]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["data_check"]["services"] = [{**asdict(s), "ok": s.ok} for s in self.data_check.services]
        doc["data_check"]["commands"] = [{**asdict(c), "ok": c.ok} for c in self.data_check.commands]
        doc["budgets"] = [{**asdict(b), "ok": b.ok} for b in self.budgets]
        return doc
