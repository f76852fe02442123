"""One operation at a time per spec: a second one fails at once naming who holds the lock; a watcher
is registered so that a drill can ask who watches; a stale journal is never adopted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from deplat.cli import run as cli_run
from deplat.failover.journal import Journal
from deplat.failover.operation_lock import (
    OperationBusy,
    holder,
    operation_lock,
    registered_watcher,
    running_watchers,
)
from deplat.spec import load_spec
from tests.failover.conftest import guestbook_doc

HOLD = """
import sys, time
from deplat.failover.operation_lock import operation_lock
from deplat.spec import load_spec
with operation_lock(load_spec(sys.argv[1]), "drill", command="deplat drill"):
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


def test_a_second_operation_fails_at_once_naming_the_holder(other_holder) -> None:
    spec, proc = other_holder
    started = time.monotonic()
    with pytest.raises(OperationBusy) as caught, operation_lock(spec, "fail over"):
        pass
    assert time.monotonic() - started < 1.0
    assert f"pid {proc.pid}" in caught.value.message and "deplat drill" in caught.value.message
    found = holder(spec)
    assert found is not None and found.pid == proc.pid


def test_cli_failover_while_another_operation_runs_exits_1_and_journals_nothing(
    other_holder, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, proc = other_holder
    code = cli_run(["-f", str(spec.source), "failover", "--to", "site-b", "--yes"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"pid {proc.pid}" in err and "deplat drill" in err
    assert Journal.all(spec) == []


def test_the_lock_is_free_again_when_its_holder_is_killed(other_holder) -> None:
    spec, proc = other_holder
    proc.kill()
    proc.wait()
    assert holder(spec) is None
    with operation_lock(spec, "fail over") as me:
        assert me.pid == os.getpid()
        with operation_lock(spec, "a failover inside a drill"):  # re-entrant within a process
            pass


def test_a_running_watcher_is_known_by_its_pid_and_forgotten_when_it_stops(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    assert running_watchers(spec) == []
    with registered_watcher(spec, "watch"):
        (found,) = running_watchers(spec)
        assert found.pid == os.getpid()
    assert running_watchers(spec) == []


def test_a_watcher_killed_with_sigkill_is_not_reported_as_running(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    code = (
        "import sys, os; from deplat.failover.operation_lock import registered_watcher;"
        "from deplat.spec import load_spec\n"
        "with registered_watcher(load_spec(sys.argv[1]), 'w'): os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", code, str(spec.source)], check=False)
    assert running_watchers(spec) == []
