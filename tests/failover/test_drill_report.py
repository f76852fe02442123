"""The drill's report files from a known result: Markdown tables, the chart, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from deplat.failover.drill.chart import mermaid, shares, svg
from deplat.failover.drill.junit import junit_xml
from deplat.failover.drill.outcome import (
    Budget,
    CommandRun,
    DataCheck,
    DrillReport,
    Mark,
    ServiceData,
    StepTime,
    SuspendPoint,
    UsersView,
)
from deplat.failover.drill.report import drill_markdown

T0 = 1_800_000_000.0


def a_report(*, rto_budget: float = 10.0) -> DrillReport:
    report = DrillReport(
        ok=True,
        site="site-a",
        target="site-b",
        mode="suspended",
        switch="dns",
        url="http://app.test:8080",
        version="9.9.9",
        detection_seconds=3.0,
        rto_seconds=4.0,
        rpo_seconds=0.7,
        ttl=60,
        policy={"probe_interval": 1.0, "timeout": 0.5, "failures_to_down": 3},
        started_at=T0 - 5,
        finished_at=T0 + 10,
    )
    report.timeline = [
        Mark("suspension", T0, 0.0, "site-a suspended"),
        Mark("detection", T0 + 3.0, 3.0, "site-a is suspended"),
        Mark("decision", T0 + 3.0, 3.0, "failing over"),
        Mark("DNS switched", T0 + 3.8, 3.8, "DNS: ns-a ok"),
        Mark("first healthy answer", T0 + 4.0, 4.0, "from site-b"),
    ]
    report.steps = [StepTime("restore", "done", 0.5), StepTime("switch", "done", 0.2)]
    report.users = UsersView(via="DNS through the nameserver at 127.0.0.1#53", requests=80, failed=70)
    report.users.failures = {"timeout": 70}
    report.suspend_point = SuspendPoint("random", 0.7, 1.0)
    report.data_check = DataCheck(
        ok=True,
        services=[ServiceData("web", files=2, bytes=100, same=1, grown=1)],
        commands=[CommandRun("check", ["python3", "check.py"], 0, 0.2, "5 of 5 found")],
    )
    report.budgets = [Budget("RTO", rto_budget, 4.0), Budget("RPO", 5.0, 0.7)]
    return report


def test_markdown_shows_figures_budgets_steps_users_and_data_as_tables() -> None:
    text = drill_markdown(a_report())
    assert text.startswith("# Drill passed: site-a suspended -> site-b")
    assert "deplat 9.9.9" in text
    assert (
        "| RTO (suspension -> users' first healthy answer from the new site) | 4.00 s | ≤ 10 s (met) |"
        in text
    )
    assert "| restore | done | 1 | 0.500 |" in text
    assert "- requests: 80, failed: 70" in text
    assert "| web | 2 | 100 | 1 | 1 | none | none |" in text
    assert "at a random point of the backup cycle" in text
    assert "deplat dns ttl --lower" in text
    assert "{'" not in text and "[]" not in text


def test_the_chart_shows_detections_share_of_the_rto() -> None:
    report = a_report()
    parts = {name: round(share, 2) for name, _, share in shares(report)}
    assert parts == {
        "detection": 0.75,
        "decision": 0.0,
        "failover (restore, switch)": 0.2,
        "until users see it": 0.05,
    }
    chart = mermaid(report)
    assert chart.startswith("```mermaid\ngantt") and "detection 75% :crit, p0, 0, 3000" in chart
    doc = ET.fromstring(svg(report))  # well-formed SVG
    assert doc.tag == "{http://www.w3.org/2000/svg}svg"
    assert "detection: 3.00 s (75% of the RTO)" in svg(report)


def test_junit_has_one_case_per_verdict_and_a_failure_when_over_budget() -> None:
    root = ET.fromstring(junit_xml(a_report(rto_budget=2.0)))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "failover from site-a (suspended)",
        "data check",
        "RTO within 2 s",
        "RPO within 5 s",
    ]
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "0"
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "RTO 4.000 s is over the budget of 2 s"
    assert all(c.find("failure") is None for c in (cases[0], cases[1], cases[3]))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["rto_seconds"] == "4.0" and props["deplat_version"] == "9.9.9"
    assert float(suite.get("time") or 0) == 15.0


def test_the_terminal_shows_the_rto_as_a_bar_within_80_columns() -> None:
    from rich.console import Console

    from deplat.cli.render.failover import print_drill

    console = Console(width=80, record=True, no_color=True, force_terminal=False)
    print_drill(console, a_report())
    text = console.export_text()
    assert "RTO  " + "█" * 45 in text  # detection: 75 % of a 60-cell bar
    assert "■ detection 3.00s (75%)" in text
    assert max(len(line) for line in text.splitlines()) <= 80
