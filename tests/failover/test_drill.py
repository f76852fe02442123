"""The drill end to end: the guestbook on local sites, real HTTP, a real BIND (or the front door)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deplat.events import EventKind, Recorder
from deplat.failover.drill import DrillOptions, run_drill
from deplat.state import load_active
from tests.failover.conftest import GUESTBOOK_DRILL

pytestmark = pytest.mark.slow


def entries(guestbook, site: str) -> list[str]:  # type: ignore[no-untyped-def]
    import httpx

    answer = httpx.get(guestbook.url(site, "/entries"), timeout=3, trust_env=False)
    return [str(e["message"]) for e in answer.json()]


@pytest.mark.parametrize("mode", ["suspended", "refused", "blackhole", "slow"])
def test_drill_detects_each_failure_mode_and_moves_dns_and_data(guestbook, bind_server, mode: str) -> None:
    guestbook.env = bind_server.secret_env()
    guestbook.write(dns=[bind_server.dns_entry("ns-a")], drill=GUESTBOOK_DRILL)
    events = Recorder()

    report = run_drill(guestbook.spec, guestbook.secrets(), DrillOptions(mode=mode, stay=True), emit=events)

    assert report.ok, report.to_dict()
    assert report.switch == "dns"
    assert report.target == "site-b"
    # the names now resolve, on the real BIND, to the new primary only
    for name in guestbook.spec.domain.names:
        assert bind_server.query(name, "A") == [guestbook.address("site-b")]
    verdict = next(
        e for e in events.of(EventKind.WATCH_VERDICT) if e.site == "site-a" and e.data["state"] != "up"
    )
    # a suspended site is told from a down one by its control plane, not by an HTTP answer
    assert verdict.data["state"] == ("suspended" if mode == "suspended" else "down")
    assert report.detection_seconds is not None and report.detection_seconds > 0
    assert report.rto_seconds is not None and report.rto_seconds >= report.detection_seconds
    assert report.rpo_seconds is not None and report.rpo_seconds >= 0
    # the app's own check read back what its write command wrote, through the new site
    assert [(c.name, c.exit_code) for c in report.data_check.commands] == [("write", 0), ("check", 0)]
    assert [(s.service, s.missing, s.changed) for s in report.data_check.services] == [("web", [], [])]
    names = [m.name for m in report.timeline]
    assert names == ["suspension", "detection", "decision", "DNS switched", "first healthy answer"]
    offsets = [m.offset for m in report.timeline]
    assert all(o is not None for o in offsets) and offsets == sorted(offsets)
    assert load_active(guestbook.spec).primary == "site-b"  # --stay
    assert Path(report.report_path or "").read_text().startswith("# Drill passed")


def test_drill_cli_gates_ci_on_budgets_and_writes_junit(guestbook, tmp_path: Path) -> None:
    guestbook.write(drill={**GUESTBOOK_DRILL, "max_rpo": 60})
    report_file, junit = tmp_path / "drill.md", tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "DEPLAT_FRONT_DOOR"}
    command = [sys.executable, "-m", "deplat", "drill", "-f", str(guestbook.path), "--json"]
    proc = subprocess.run(
        [*command, "--report", str(report_file), "--junit", str(junit), "--max-rto", "0.001"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr + proc.stdout  # over the RTO budget
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert doc["switch"] == "front_door"
    assert doc["url"] == f"http://{guestbook.net}.10:{guestbook.port}"
    assert doc["rto_seconds"] > 0.001
    assert doc["data_check"]["ok"] is True
    assert {b["figure"]: b["ok"] for b in doc["budgets"]} == {"RTO": False, "RPO": True}
    # the JUnit file: one suite, a case per verdict, the RTO case failed with the reason
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["RTO within 0.001 s"]
    assert "over the budget" in (failed[0].find("failure").get("message") or "")  # type: ignore[union-attr]
    text = report_file.read_text()
    assert "| detection (suspension -> the watcher's verdict) |" in text and "```mermaid" in text
    assert "{'" not in text  # no Python dicts in the report
    # the drill left the app as it found it: the primary is back on site-a, and the sites it had
    # to stand up are stopped again
    assert load_active(guestbook.spec).primary == "site-a"
    assert any(n.startswith("the primary moved back to site-a") for n in doc["notes"])
    assert "site-a was not running before the drill: stopped again (data kept)" in doc["notes"]
    from deplat.local.driver import LocalDriver

    driver = LocalDriver(guestbook.spec, guestbook.secrets())
    assert not any(driver.status(s).running for s in guestbook.spec.sites)


def test_a_drill_without_declared_commands_writes_nothing_into_the_app(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    before = entries(guestbook, "site-a")

    report = run_drill(guestbook.spec, guestbook.secrets(), DrillOptions(suspend_at="after_backup"))

    assert report.ok, report.to_dict()
    assert report.data_check.commands == []
    assert report.data_check.services[0].service == "web"
    assert report.suspend_point is not None and report.suspend_point.how == "after_backup"
    assert load_active(guestbook.spec).primary == "site-a"
    assert entries(guestbook, "site-a") == before
    assert report.changes == []  # sites were up (and still are), nothing written, primary moved back
    # a real failover right after the drill is not held back by the drill's own failovers
    active = load_active(guestbook.spec)
    assert active.last_failover_at is None
    assert [h["reason"].split(":")[0] for h in active.history] == ["drill", "drill"]


def test_drill_refuses_a_site_that_is_not_the_primary(guestbook) -> None:
    from deplat.errors import InputError

    guestbook.write()
    with pytest.raises(InputError, match="not the primary"):
        run_drill(guestbook.spec, guestbook.secrets(), DrillOptions(site="site-b"))


def test_through_a_caching_resolver_users_wait_for_the_ttl_and_the_report_says_so(
    guestbook, bind_server, tmp_path: Path
) -> None:
    from tests.support.unbound import start_unbound

    ttl = 4
    guestbook.env = bind_server.secret_env()
    guestbook.write(dns=[bind_server.dns_entry("ns-a")], ttl=ttl)
    with start_unbound(
        tmp_path / "unbound", zone="guestbook.test", upstream=(bind_server.host, bind_server.port)
    ) as r:
        options = DrillOptions(
            mode="refused", stay=True, resolver=(r.host, r.port), suspend_at="after_backup"
        )
        report = run_drill(guestbook.spec, guestbook.secrets(), options)

    assert report.ok, report.to_dict()
    assert report.users is not None and report.users.resolver_caches
    switched = next(m.offset for m in report.timeline if m.name == "DNS switched")
    assert switched is not None and report.rto_seconds is not None
    # the cache kept the old address after the switch, at most one TTL (plus a probe's slack)
    assert switched <= report.rto_seconds <= switched + ttl + 1.5
    text = Path(report.report_path or "").read_text()
    assert "caching resolver" in text and f"TTL ({ttl} s)" in text and "deplat dns ttl --lower" in text
