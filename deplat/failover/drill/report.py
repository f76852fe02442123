"""The drill's report files: Markdown (with a Mermaid chart), an SVG of the chart, an HTML page
with both, and JUnit XML for CI. By default under ``.deplat/drills/<time>.*``, owner-only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.failover.drill import chart
from deplat.failover.drill.junit import junit_xml
from deplat.files import write_text_atomic
from deplat.paths import paths

if TYPE_CHECKING:
    from deplat.failover.drill.outcome import DrillReport
    from deplat.spec.model import Spec


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _clock(at: float | None) -> str:
    if at is None:
        return "—"
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}"


def _table(head: list[str], rows: list[list[object]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def drill_markdown(report: DrillReport) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started_at))
    verdict = "passed" if report.ok else "FAILED"
    policy = report.policy
    budgets = {b.figure: b for b in report.budgets}

    def target(figure: str) -> str:
        b = budgets.get(figure)
        return "—" if b is None else f"≤ {b.limit:g} s ({'met' if b.ok else 'OVER'})"

    lines = [
        f"# Drill {verdict}: {report.site} {report.mode} -> {report.target or 'no failover'}",
        "",
        f"- started: {when}, deplat {report.version}",
        f"- traffic switch: {'local front door' if report.switch == 'front_door' else 'DNS'} ({report.url})",
        f"- policy: probe every {policy.get('probe_interval')} s, timeout {policy.get('timeout')} s, "
        f"{policy.get('failures_to_down')} failures to go down",
    ]
    if report.suspend_point is not None:
        lines.append(f"- suspended {report.suspend_point.describe()}")
    lines += ["", "## Figures", ""]
    lines += _table(
        ["figure", "value", "target"],
        [
            ["detection (suspension -> the watcher's verdict)", _seconds(report.detection_seconds), "—"],
            [
                "RTO (suspension -> users' first healthy answer from the new site)",
                _seconds(report.rto_seconds),
                target("RTO"),
            ],
            [
                "RPO (age of the restored backup at the suspension)",
                _seconds(report.rpo_seconds),
                target("RPO"),
            ],
            ["data check", "ok" if report.data_check.ok else "FAILED", "ok"],
        ],
    )
    if report.problems:
        lines += ["", "## Problems", ""] + [f"- {_cell(p)}" for p in report.problems]
    lines += ["", "## Where the RTO went", "", chart.mermaid(report), ""]
    lines += _table(
        ["phase", "seconds", "share of the RTO"],
        [[name, f"{seconds:.2f}", f"{share:.0%}"] for name, seconds, share in chart.shares(report)],
    )
    lines += ["", "## Timeline", ""]
    lines += _table(
        ["event", "time (UTC)", "after suspension", "detail"],
        [
            [m.name, _clock(m.at), "—" if m.offset is None else f"+{m.offset:.3f} s", m.detail]
            for m in report.timeline
        ],
    )
    if report.steps:
        lines += ["", "## Failover steps", ""]
        lines += _table(
            ["step", "status", "runs", "seconds"],
            [
                [s.step, s.status, s.attempts, "—" if s.seconds is None else f"{s.seconds:.3f}"]
                for s in report.steps
            ],
        )
    lines += ["", "## What users saw", "", *_users(report)]
    lines += ["", "## Data check", "", *_data(report)]
    if report.changes:
        lines += ["", "## What the drill left changed", ""] + [f"- {_cell(c)}" for c in report.changes]
    else:
        lines += ["", "## What the drill left changed", "", "- nothing: the app is as the drill found it"]
    if report.failover.get("journal"):
        lines += ["", f"Failover journal: `{report.failover['journal']}`"]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _users(report: DrillReport) -> list[str]:
    users = report.users
    if users is None:
        return ["- not measured"]
    lines = [
        f"A client asked the app's health page every 50 ms via {users.via}, as users do; counted from "
        "the suspension until the first healthy answer from another site.",
        "",
        f"- requests: {users.requests}, failed: {users.failed}",
    ]
    if users.first_failure_at is not None and users.last_failure_at is not None:
        lines.append(
            f"- failures from {_clock(users.first_failure_at)} to {_clock(users.last_failure_at)} UTC "
            f"({users.last_failure_at - users.first_failure_at:.2f} s)"
        )
    lines += [
        f"- {what}: {count} requests" for what, count in sorted(users.failures.items(), key=lambda kv: -kv[1])
    ]
    if report.switch == "dns" and report.ttl is not None:
        switched = next((m.offset for m in report.timeline if m.name == "DNS switched"), None)
        if users.resolver_caches and switched is not None and report.rto_seconds is not None:
            lines.append(
                f"- users reached the new site {report.rto_seconds - switched:.2f} s after the DNS switch "
                "(the cached old address had to expire)"
            )
        if users.resolver_caches:
            lines.append(
                f"- names came through a caching resolver that honours the records' TTL ({report.ttl} s): a "
                "user may keep the old address up to one TTL after the switch. `deplat dns ttl --lower` "
                "before a planned move shortens that wait to the lowered TTL."
            )
        else:
            lines.append(
                "- names were asked of the nameserver itself: users behind a caching resolver also wait "
                f"up to the TTL ({report.ttl} s) after the switch; `deplat dns ttl --lower` shortens it. "
                "Run the drill with --resolver to measure it."
            )
    return lines


def _data(report: DrillReport) -> list[str]:
    check = report.data_check
    lines = [f"Result: **{'ok' if check.ok else 'FAILED'}**" + (f" ({check.note})" if check.note else ""), ""]
    if check.services:
        lines.append(
            "Every file of each stateful service's data was hashed (sha256) on the old primary just before "
            "the suspension and compared with the new primary after the failover."
        )
        lines.append("")
        lines += _table(
            ["service", "files", "bytes", "same", "grown (old content kept)", "missing", "changed"],
            [
                [
                    s.service,
                    s.files,
                    s.bytes,
                    s.same,
                    s.grown,
                    ", ".join(s.missing) or "none",
                    ", ".join(s.changed) or "none",
                ]
                for s in check.services
            ],
        )
    if check.commands:
        lines += ["", "The app's own drill commands (from the spec's `drill:` section):", ""]
        lines += _table(
            ["command", "argv", "exit", "seconds", "output"],
            [
                [
                    c.name,
                    " ".join(c.argv),
                    "—" if c.exit_code is None else c.exit_code,
                    f"{c.seconds:.2f}",
                    c.output[-200:],
                ]
                for c in check.commands
            ],
        )
    else:
        lines += [
            "",
            "The spec declares no `drill.write` / `drill.check` command: "
            "the drill wrote nothing into the app.",
        ]
    return lines


def write_reports(spec: Spec, report: DrillReport, markdown: Path | None, junit: Path | None) -> None:
    """Write the Markdown report (and the SVG and HTML beside it), and JUnit XML when asked."""
    if markdown is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(report.started_at))
        markdown = paths(spec).drills / f"{stamp}.md"
    report.report_path = str(markdown)
    report.chart_path = str(markdown.with_suffix(".svg"))
    if junit is not None:
        report.junit_path = str(junit)
    text = drill_markdown(report)
    write_text_atomic(markdown, text)
    write_text_atomic(markdown.with_suffix(".svg"), chart.svg(report))
    write_text_atomic(markdown.with_suffix(".html"), chart.html(report, text))
    if junit is not None:
        write_text_atomic(junit, junit_xml(report))
