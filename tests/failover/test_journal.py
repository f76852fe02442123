"""The failover journal: durable, append-only, masked, and readable after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deplat.failover.journal import Journal, journal_dir
from deplat.secrets import SecretStore
from deplat.spec import load_spec
from tests.failover.conftest import guestbook_doc


def make_spec(tmp_path: Path):
    path = tmp_path / "deplat.yaml"
    path.write_text(yaml.safe_dump(guestbook_doc("127.9.9", 18080)), encoding="utf-8")
    return load_spec(path)


def test_journal_records_steps_and_reads_them_back(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    journal = Journal.create(spec, {"from": "site-a", "to": "site-b"})
    journal.start("decide")
    journal.done("decide", {"target_health": "healthy"})
    journal.start("ensure_target")

    again = Journal.load(journal.path)
    assert again.begin == {"from": "site-a", "to": "site-b"}
    assert again.result_of("decide") == {"target_health": "healthy"}
    assert again.result_of("ensure_target") is None and again.started("ensure_target")
    assert not again.finished
    assert journal.path.parent == journal_dir(spec)
    assert [r["seq"] for r in again.records] == [0, 1, 2, 3]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    journal = Journal.create(spec, {"from": "site-a", "to": "site-b"})
    journal.done("decide", {"ok": True})
    with journal.path.open("a") as f:
        f.write('{"seq": 2, "kind": "done", "step": "ensure_ta')  # killed mid-write
    again = Journal.load(journal.path)
    assert again.result_of("decide") == {"ok": True}
    assert again.result_of("ensure_target") is None
    assert len(again.records) == 2


def test_newest_unfinished_skips_finished_journals(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    first = Journal.create(spec, {"from": "site-a", "to": "site-b"})
    second = Journal.create(spec, {"from": "site-a", "to": "site-c"})
    second.end("done")
    found = Journal.newest_unfinished(spec)
    assert found is not None and found.path == first.path
    first.end("refused")
    assert Journal.newest_unfinished(spec) is None
    assert [j.outcome for j in Journal.all(spec)] == ["refused", "done"]


def test_secret_values_never_reach_the_journal(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    secrets = SecretStore(spec, environ={"DNS_TSIG_SECRET": "s3cr3t-value-xyz"})
    secrets.get("DNS_TSIG_SECRET")
    journal = Journal.create(spec, {"from": "site-a", "to": "site-b"}, secrets.masker)
    journal.failed("switch", "auth failed with key s3cr3t-value-xyz", {"detail": ["s3cr3t-value-xyz"]})
    text = journal.path.read_text()
    assert "s3cr3t-value-xyz" not in text
    assert "********" in text
    assert all(json.loads(line) for line in text.splitlines())


def test_steps_summary_counts_resumed_attempts(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    journal = Journal.create(spec, {"from": "site-a", "to": "site-b"})
    journal.start("restore")
    journal.start("restore")  # resumed after a crash mid-step
    journal.done("restore", {"rpo_seconds": 1.5})
    (step,) = journal.steps()
    assert step["step"] == "restore" and step["status"] == "done" and step["attempts"] == 2
    assert journal.attempts("restore") == 2


def test_the_watch_timeline_log_masks_secret_values(tmp_path: Path) -> None:
    from deplat.events import Event
    from deplat.failover.watch import TimelineLog

    spec = make_spec(tmp_path)
    secrets = SecretStore(spec, environ={"DNS_TSIG_SECRET": "tsig-abcdef-123"})
    secrets.get("DNS_TSIG_SECRET")
    log = TimelineLog(tmp_path / "watch.log", secrets)
    log.write(Event("watch.failover_failed", "key tsig-abcdef-123 refused", data={"why": "tsig-abcdef-123"}))
    text = (tmp_path / "watch.log").read_text()
    assert "tsig-abcdef-123" not in text
    assert json.loads(text)["message"] == "key ******** refused"
