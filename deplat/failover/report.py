"""The drill's report file: Markdown, under ``.deplat/drills/<timestamp>.md`` (or a given path)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.paths import home

if TYPE_CHECKING:
    from deplat.failover.drill import DrillReport
    from deplat.spec.model import Spec


def drills_dir(spec: Spec) -> Path:
    return home(spec) / "drills"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def drill_markdown(report: DrillReport) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started_at))
    verdict = "passed" if report.ok else "FAILED"
    policy = report.policy
    lines = [
        f"# Drill {verdict}: {report.site} {report.mode} -> {report.target or 'no failover'}",
        "",
        f"- started: {when}",
        f"- traffic switch: {'local front door' if report.switch == 'front_door' else 'DNS'} ({report.url})",
        f"- policy: probe every {policy.get('probe_interval')} s, timeout {policy.get('timeout')} s, "
        f"{policy.get('failures_to_down')} failures to go down",
        "",
        "| figure | value |",
        "|---|---|",
        f"| detection | {_seconds(report.detection_seconds)} |",
        f"| RTO (suspension -> first healthy answer from the new site) | {_seconds(report.rto_seconds)} |",
        f"| RPO (age of the restored backup at the suspension) | {_seconds(report.rpo_seconds)} |",
        f"| data check | {'ok' if report.data_check.get('ok') else 'FAILED'} |",
        "",
        "## Timeline",
        "",
        "| event | time (UTC) | after suspension | detail |",
        "|---|---|---|---|",
    ]
    for mark in report.timeline:
        at = (
            "—"
            if mark.at is None
            else time.strftime("%H:%M:%S", time.gmtime(mark.at)) + f".{int(mark.at % 1 * 1000):03d}"
        )
        offset = "—" if mark.offset is None else f"+{mark.offset:.3f} s"
        lines.append(f"| {mark.name} | {at} | {offset} | {_cell(mark.detail)} |")
    lines += ["", "## Data check", ""]
    for key, value in report.data_check.items():
        lines.append(f"- {key}: {_cell(value)}")
    if report.failover:
        lines += ["", "## Failover", ""]
        for key in ("outcome", "from_site", "to_site", "journal"):
            if report.failover.get(key) is not None:
                lines.append(f"- {key}: {_cell(report.failover[key])}")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def write_drill_report(spec: Spec, report: DrillReport, path: Path | None = None) -> Path:
    if path is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(report.started_at))
        path = drills_dir(spec) / f"{stamp}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(drill_markdown(report), encoding="utf-8")
    return path
