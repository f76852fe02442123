"""The drill as JUnit XML, the report format CI systems display (GitHub, GitLab, Jenkins).

One ``testsuite`` named ``deplat drill``; one ``testcase`` per verdict: the failover happened, the
data check, and each budget (RTO, RPO). A failed case carries a ``failure`` element with the
reason; the figures are ``property`` elements of the suite.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from deplat.failover.drill.outcome import DrillReport


def _cases(report: DrillReport) -> list[tuple[str, float, str | None]]:
    """(name, seconds, failure message or None)."""
    moved = report.target is not None and report.rto_seconds is not None
    problems = "; ".join(p for p in report.problems if "budget" not in p and "data check" not in p)
    cases = [
        (
            f"failover from {report.site} ({report.mode})",
            report.rto_seconds or 0.0,
            None if moved else (problems or "no failover"),
        ),
    ]
    check = report.data_check
    bad = [f"{s.service}: missing {s.missing}, changed {s.changed}" for s in check.services if not s.ok]
    bad += [f"drill.{c.name} exited {c.exit_code}: {c.output[-200:]}" for c in check.commands if not c.ok]
    cases.append(("data check", 0.0, None if check.ok else ("; ".join(bad) or check.note or "failed")))
    for budget in report.budgets:
        shown = "not measured" if budget.value is None else f"{budget.value:.3f} s"
        cases.append(
            (
                f"{budget.figure} within {budget.limit:g} s",
                budget.value or 0.0,
                None if budget.ok else f"{budget.figure} {shown} is over the budget of {budget.limit:g} s",
            )
        )
    return cases


def junit_xml(report: DrillReport) -> str:
    cases = _cases(report)
    suite = ET.Element(
        "testsuite",
        {
            "name": "deplat drill",
            "tests": str(len(cases)),
            "failures": str(sum(1 for _, _, f in cases if f is not None)),
            "errors": "0",
            "skipped": "0",
            "time": f"{max(0.0, report.finished_at - report.started_at):.3f}",
        },
    )
    props = ET.SubElement(suite, "properties")
    figures = {
        "site": report.site,
        "target": report.target or "",
        "mode": report.mode,
        "detection_seconds": report.detection_seconds,
        "rto_seconds": report.rto_seconds,
        "rpo_seconds": report.rpo_seconds,
        "deplat_version": report.version,
    }
    for key, value in figures.items():
        ET.SubElement(props, "property", {"name": key, "value": "" if value is None else str(value)})
    for name, seconds, failure in cases:
        case = ET.SubElement(
            suite, "testcase", {"classname": "deplat.drill", "name": name, "time": f"{seconds:.3f}"}
        )
        if failure is not None:
            ET.SubElement(case, "failure", {"message": failure, "type": "DrillFailure"}).text = failure
    suites = ET.Element("testsuites", {"name": "deplat"})
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
