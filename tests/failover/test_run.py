"""The failover itself on local sites: traffic, data, refusal, cold targets, and the old site's silence."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from deplat.cli import run as cli_run
from deplat.errors import InputError, OperationFailed
from deplat.events import Recorder
from deplat.failover import frontdoor
from deplat.failover.backup import backup_site, make_store
from deplat.failover.journal import Journal
from deplat.failover.run import STEPS, run_failover
from deplat.sites import driver_for
from deplat.state import load_active

pytestmark = pytest.mark.slow


def sign(guestbook, site: str, message: str) -> None:
    answer = httpx.post(
        guestbook.url(site, "/entries"), json={"name": "t", "message": message}, trust_env=False
    )
    assert answer.status_code == 201


def entries(url: str) -> list[str]:
    return [e["message"] for e in httpx.get(url, trust_env=False, timeout=2).json()]


def test_failover_moves_traffic_and_data_to_the_warm_site(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    for i in range(3):
        sign(guestbook, "site-a", f"hello {i}")
    backup_site(spec, "site-a", make_store(spec))
    events = Recorder()
    with frontdoor.FrontDoor(spec).start("site-a") as door:
        result = run_failover(spec, guestbook.secrets(), to="site-b", emit=events)
        front = door.urls[0]
        assert entries(front + "/entries") == ["hello 0", "hello 1", "hello 2"]
        answer = httpx.get(front + "/healthz", trust_env=False)
        assert answer.headers[frontdoor.SITE_HEADER] == "site-b"

    assert result.ok and result.outcome == "done"
    assert [s["step"] for s in result.steps] == list(STEPS)
    assert all(s["status"] == "done" for s in result.steps)
    assert result.rpo_seconds is not None and result.rpo_seconds >= 0
    assert result.switch["via"] == "front_door" and result.switch["outcome"] == "switched"
    assert result.verify["via"] == "front_door" and result.verify["healthy"]
    active = load_active(spec)
    assert active.primary == "site-b" and "site-a" in active.fenced and len(active.history) == 1
    journal = Journal.load(Path(result.journal))
    assert journal.finished and journal.outcome == "done"
    assert result.steps[-1]["result"]["archive"]["kind"] == "local"


def test_failover_refuses_a_warm_target_that_is_not_healthy_unless_forced(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a")  # site-b never started
    spec = guestbook.spec
    with pytest.raises(OperationFailed, match="not ready"):
        run_failover(spec, guestbook.secrets(), to="site-b")
    assert load_active(spec).primary == "site-a"
    assert frontdoor.read_upstream(spec) is None  # nothing was switched
    refused = Journal.all(spec)[-1]
    assert refused.outcome == "refused" and Journal.newest_unfinished(spec) is None

    result = run_failover(spec, guestbook.secrets(), to="site-b", force=True, wait=1.0)
    assert result.outcome == "unverified" and not result.ok
    assert load_active(spec).primary == "site-b"


def test_failover_stands_up_a_cold_target(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a")
    spec = guestbook.spec
    sign(guestbook, "site-a", "kept")
    backup_site(spec, "site-a", make_store(spec))
    result = run_failover(spec, guestbook.secrets(), to="site-c")
    assert result.ok, result.message
    decide = next(s for s in result.steps if s["step"] == "decide")
    ensure = next(s for s in result.steps if s["step"] == "ensure_target")
    assert decide["result"]["target_health"] == "cold"
    assert ensure["result"]["stood_up"] is True
    assert entries(guestbook.url("site-c", "/entries")) == ["kept"]


def test_failover_never_calls_the_suspended_sites_driver(guestbook, recording_driver) -> None:
    from deplat.failover.faults import FaultInjector

    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec, secrets = guestbook.spec, guestbook.secrets()
    sign(guestbook, "site-a", "before")
    backup_site(spec, "site-a", make_store(spec))
    factory, calls = recording_driver(lambda site: driver_for(spec, site, secrets), {"site-a"})
    with FaultInjector(spec, "site-a", secrets, restart_on_clear=False) as fault:
        fault.apply("suspended")
        result = run_failover(spec, secrets, to="site-b", drivers=factory)
    assert result.ok, result.message
    assert calls == []  # not one call to the provider that is gone
    assert entries(guestbook.url("site-b", "/entries")) == ["before"]


def test_failover_input_errors(guestbook) -> None:
    guestbook.write()
    spec = guestbook.spec
    with pytest.raises(InputError, match="no such site"):
        run_failover(spec, guestbook.secrets(), to="nowhere")
    with pytest.raises(InputError, match="already the site being left"):
        run_failover(spec, guestbook.secrets(), to="site-a")
    with pytest.raises(InputError, match="no unfinished failover"):
        run_failover(spec, guestbook.secrets(), resume=True)


def test_cli_failover_json_reports_the_steps(guestbook, capsys: pytest.CaptureFixture[str]) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    code = cli_run(["--json", "-f", str(guestbook.path), "failover", "--to", "site-b", "--yes"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads(out)
    assert doc["outcome"] == "done" and doc["to_site"] == "site-b"
    assert [s["step"] for s in doc["steps"]] == list(STEPS)


def test_cli_failover_unready_target_exits_1_with_a_hint(
    guestbook, capsys: pytest.CaptureFixture[str]
) -> None:
    guestbook.write()
    guestbook.up("site-a")
    code = cli_run(["-f", str(guestbook.path), "failover", "--to", "site-b", "--yes"])
    err = capsys.readouterr().err
    assert code == 1
    assert "not ready" in err and "--force" in err and "Traceback" not in err


def test_cli_failover_without_target_is_usage_error(guestbook, capsys: pytest.CaptureFixture[str]) -> None:
    guestbook.write()
    assert cli_run(["-f", str(guestbook.path), "failover", "--yes"]) == 2
    assert "--to" in capsys.readouterr().err


def test_a_new_failover_supersedes_an_unfinished_one_left_by_a_dead_process(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    stale = Journal.create(spec, {"from": "site-a", "to": "site-c", "pid": 2**22 + 12345})
    result = run_failover(spec, guestbook.secrets(), to="site-b")
    assert result.ok
    assert Journal.load(stale.path).outcome == "superseded"
    assert Journal.newest_unfinished(spec) is None


@pytest.mark.parametrize("json_out", [False, True])
def test_cli_failover_without_yes_off_a_terminal_changes_nothing_and_exits_2(
    guestbook, json_out: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    guestbook.write()
    before = load_active(guestbook.spec).primary
    args = ["--json"] if json_out else []
    assert cli_run([*args, "-f", str(guestbook.path), "failover", "--to", "site-b"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert load_active(guestbook.spec).primary == before


def test_cli_watch_refuses_a_negative_duration(guestbook) -> None:
    guestbook.write()
    assert cli_run(["-f", str(guestbook.path), "watch", "--for", "-1"]) == 2
