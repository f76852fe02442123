"""The drill end to end: the guestbook on local sites, real HTTP, a real BIND (or the front door)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deplat.events import Recorder
from deplat.failover.drill import run_drill
from deplat.state import load_active

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["suspended", "refused", "blackhole", "slow"])
def test_drill_detects_each_failure_mode_and_moves_dns_and_data(guestbook, bind_server, mode: str) -> None:
    guestbook.env = bind_server.secret_env()
    guestbook.write(dns=[bind_server.dns_entry("ns-a")])
    events = Recorder()

    report = run_drill(guestbook.spec, guestbook.secrets(), mode=mode, emit=events)

    assert report.ok, report.to_dict()
    assert report.switch == "dns"
    assert report.target == "site-b"
    # the names now resolve, on the real BIND, to the new primary only
    for name in guestbook.spec.domain.names:
        assert bind_server.query(name, "A") == [guestbook.address("site-b")]
    verdict = next(
        e
        for e in events.events
        if e.kind == "watch.verdict" and e.site == "site-a" and e.data["state"] != "up"
    )
    assert verdict.data["state"] == ("suspended" if mode == "suspended" else "down")
    assert report.detection_seconds is not None and report.detection_seconds > 0
    assert report.rto_seconds is not None and report.rto_seconds >= report.detection_seconds
    assert report.rpo_seconds is not None and report.rpo_seconds >= 0
    # data written through the app before the suspension is served by the new site
    assert report.data_check["guestbook"]["found"] == report.data_check["guestbook"]["written"] > 0
    assert report.data_check["files"]["files_missing"] == []
    names = [m.name for m in report.timeline]
    assert names == ["suspension", "detection", "decision", "DNS switched", "first healthy answer"]
    offsets = [m.offset for m in report.timeline]
    assert all(o is not None for o in offsets) and offsets == sorted(offsets)
    assert load_active(guestbook.spec).primary == "site-b"
    assert Path(report.report_path or "").read_text().startswith("# Drill passed")


def test_drill_cli_runs_with_the_front_door_when_the_spec_has_no_dns(guestbook, tmp_path: Path) -> None:
    guestbook.write()
    report_file = tmp_path / "drill.md"
    env = {k: v for k, v in os.environ.items() if k != "DEPLAT_FRONT_DOOR"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deplat",
            "drill",
            "-f",
            str(guestbook.path),
            "--json",
            "--report",
            str(report_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True
    assert doc["switch"] == "front_door"
    assert doc["url"] == f"http://{guestbook.net}.10:{guestbook.port}"
    assert doc["data_check"]["guestbook"]["missing"] == []
    assert doc["rto_seconds"] > 0
    text = report_file.read_text()
    assert "| detection |" in text and "first healthy answer" in text


def test_drill_refuses_a_site_that_is_not_the_primary(guestbook) -> None:
    from deplat.errors import InputError

    guestbook.write()
    with pytest.raises(InputError, match="not the primary"):
        run_drill(guestbook.spec, guestbook.secrets(), site="site-b")
