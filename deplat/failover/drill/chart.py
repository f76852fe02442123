"""The drill's timeline as a picture: where the RTO went, phase by phase.

Two forms of the same four phases (suspension -> detection -> decision -> switched -> first
healthy answer): a Mermaid gantt block for the Markdown report (GitHub and GitLab draw it), and a
self-contained SVG (one stacked bar, each phase's share of the RTO written on it).
"""

from __future__ import annotations

from html import escape

from deplat.failover.drill.outcome import DrillReport

COLORS = ("#d9534f", "#f0ad4e", "#5bc0de", "#5cb85c")  # detection, decision, failover, users


def phases(report: DrillReport) -> list[tuple[str, float, float]]:
    """(name, start, end) in seconds after the suspension, for each phase that has both ends."""
    offsets = [m.offset for m in report.timeline]
    names = ["detection", "decision", "failover (restore, switch)", "until users see it"]
    out = []
    for i, name in enumerate(names):
        start = offsets[i] if i < len(offsets) else None
        end = offsets[i + 1] if i + 1 < len(offsets) else None
        if start is not None and end is not None and end >= start:
            out.append((name, start, end))
    return out


def shares(report: DrillReport) -> list[tuple[str, float, float]]:
    """(phase, seconds, share of the RTO) for each phase."""
    total = report.rto_seconds or (phases(report)[-1][2] if phases(report) else 0.0)
    return [(n, e - s, (e - s) / total if total else 0.0) for n, s, e in phases(report)]


def mermaid(report: DrillReport) -> str:
    """A Mermaid gantt of the phases, in milliseconds after the suspension."""
    lines = [
        "```mermaid",
        "gantt",
        f"    title {report.site} {report.mode}: where the RTO went",
        "    dateFormat x",
        "    axisFormat %S.%L s",
        "    section phases",
    ]
    for i, (name, start, end) in enumerate(phases(report)):
        share = shares(report)[i][2]
        crit = "crit, " if i == 0 else ""
        label = f"{name} {share:.0%}".replace(":", " ")
        lines.append(
            f"    {label} :{crit}p{i}, {int(start * 1000)}, {max(int(end * 1000), int(start * 1000) + 1)}"
        )
    lines.append("```")
    return "\n".join(lines)


def svg(report: DrillReport, width: int = 760) -> str:
    """One stacked bar of the RTO by phase, with a legend: a standalone SVG document."""
    parts = shares(report)
    total = sum(seconds for _, seconds, _ in parts) or 1.0
    left, bar_w, top, bar_h = 20, width - 40, 50, 40
    title = (
        f"Drill {'passed' if report.ok else 'FAILED'}: {report.site} {report.mode} -> {report.target or '?'}"
        f" — RTO {report.rto_seconds if report.rto_seconds is not None else 'n/a'} s"
    )
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{top + bar_h + 40 + 22 * len(parts)}" font-family="sans-serif" font-size="13">',
        f'<text x="{left}" y="28" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    x = float(left)
    for i, (name, seconds, share) in enumerate(parts):
        w = bar_w * seconds / total
        color = COLORS[i % len(COLORS)]
        body.append(
            f'<rect x="{x:.1f}" y="{top}" width="{max(w, 1):.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{escape(name)}: {seconds:.2f} s ({share:.0%})</title></rect>"
        )
        if w > 48:
            body.append(
                f'<text x="{x + w / 2:.1f}" y="{top + bar_h / 2 + 5}" text-anchor="middle" fill="#fff">'
                f"{share:.0%}</text>"
            )
        x += w
    y = top + bar_h + 28
    for i, (name, seconds, share) in enumerate(parts):
        body.append(
            f'<rect x="{left}" y="{y - 11}" width="12" height="12" fill="{COLORS[i % len(COLORS)]}"/>'
        )
        body.append(
            f'<text x="{left + 18}" y="{y}">{escape(name)}: {seconds:.2f} s ({share:.0%} of the RTO)</text>'
        )
        y += 22
    body.append("</svg>")
    return "\n".join(body) + "\n"


def html(report: DrillReport, markdown_text: str) -> str:
    """A standalone HTML page: the chart (inline SVG) above the report's text."""
    return (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{escape(report.site)} drill</title>"
        '<body style="font-family:sans-serif;max-width:60em;margin:2em auto">'
        f"{svg(report)}<pre style='white-space:pre-wrap'>{escape(markdown_text)}</pre></body>\n"
    )
