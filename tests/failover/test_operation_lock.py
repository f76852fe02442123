"""One operation at a time per spec (``deplat.oplock``'s ``operation`` lock): a failover or a rejoin
while another operation runs fails at once naming the holder, and journals nothing; the lock dies with
its holder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from deplat import oplock
from deplat.cli import run as cli_run
from deplat.failover.journal import Journal
from deplat.failover.run import run_failover
from deplat.secrets import SecretStore
from deplat.spec import load_spec
from tests.failover.conftest import guestbook_doc

HOLD = """
import sys, time
from deplat import oplock
from deplat.spec import load_spec
with oplock.hold(load_spec(sys.argv[1]), "operation", "deplat failover --to site-c"):
    print("held", flush=True)
    time.sleep(60)
"""


def make_spec(tmp_path: Path):
    path = tmp_path / "deplat.yaml"
    path.write_text(yaml.safe_dump(guestbook_doc("127.9.9", 18080)), encoding="utf-8")
    return load_spec(path)


@pytest.fixture
def other_holder(tmp_path: Path):
    spec = make_spec(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(spec.source)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield spec, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_failover_while_another_operation_runs_fails_at_once_naming_it(other_holder) -> None:
    spec, proc = other_holder
    started = time.monotonic()
    with pytest.raises(oplock.Busy) as caught:
        run_failover(spec, SecretStore(spec, environ={}), to="site-b")
    assert time.monotonic() - started < 2.0
    assert f"pid {proc.pid}" in caught.value.message and "deplat failover --to site-c" in caught.value.message
    assert Journal.all(spec) == []


def test_cli_failover_and_rejoin_while_another_operation_runs_exit_2_and_journal_nothing(
    other_holder, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, proc = other_holder
    assert cli_run(["-f", str(spec.source), "failover", "--to", "site-b", "--yes"]) == 2
    err = capsys.readouterr().err
    assert f"pid {proc.pid}" in err and "Traceback" not in err
    assert Journal.all(spec) == []


def test_the_operation_lock_is_free_again_when_its_holder_is_killed(other_holder) -> None:
    spec, proc = other_holder
    assert oplock.taken(spec, "operation") is not None
    proc.kill()
    proc.wait()
    assert oplock.taken(spec, "operation") is None
