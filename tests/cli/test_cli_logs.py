"""``deplat logs``: a local site's real service logs; cloud sites say why not (yet)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deplat.cli.argv import hoist_globals
from deplat.site_logs import LogSource, follow
from tests.support.cli import cli
from tests.support.local_sites import Guestbook

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_logs_show_the_primarys_service_output_then_one_service_as_json(
    make_guestbook: Callable[..., Guestbook], capsys: pytest.CaptureFixture[str]
) -> None:
    book = make_guestbook(sites=2)
    assert book.driver.up(book.sites[0]).ok
    spec = str(book.spec_path)
    assert cli("-f", spec, "logs") == 0
    out = capsys.readouterr().out
    assert "[deplat " in out and "started pid" in out  # the supervisor's notes in the service's log
    assert cli("logs", "local-a", "web", "-n", "1", "--json", "--file", spec) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 1 and records[0]["site"] == "local-a" and records[0]["service"] == "web"


def test_logs_of_a_site_never_stood_up_say_how_to_get_some(
    make_guestbook: Callable[..., Guestbook], capsys: pytest.CaptureFixture[str]
) -> None:
    book = make_guestbook(sites=2)
    assert cli("-f", str(book.spec_path), "logs", "local-b") == 2
    err = capsys.readouterr().err
    assert "site local-b has no logs here" in err and "deplat up --site local-b" in err


def test_unknown_site_or_service_lists_the_valid_ones(
    make_guestbook: Callable[..., Guestbook], capsys: pytest.CaptureFixture[str]
) -> None:
    book = make_guestbook(sites=2)
    assert cli("-f", str(book.spec_path), "logs", "local-z") == 2
    assert "sites: local-a, local-b" in capsys.readouterr().err
    assert cli("-f", str(book.spec_path), "logs", "local-a", "db") == 2
    assert "services: web" in capsys.readouterr().err


def test_logs_of_a_cloud_site_go_over_ssh_and_first_need_its_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading them over a real sshd: tests/remote/test_logs_and_exec.py. Here: the address comes
    from the site's state, which needs the state passphrase; without it, one clear message."""
    monkeypatch.delenv("DEPLAT_PASSPHRASE", raising=False)
    assert cli("-f", str(ROOT / "examples/cloud/deplat.yaml"), "logs", "aws-fra") == 2
    assert "no passphrase for the state of cloud sites" in capsys.readouterr().err


def test_hoisting_leaves_logs_own_dash_f_alone() -> None:
    assert hoist_globals(["logs", "local-a", "-f", "--file", "x.yaml"]) == [
        "--file", "x.yaml", "logs", "local-a", "-f",
    ]  # fmt: skip
    assert hoist_globals(["-f", "x.yaml", "logs", "-f"]) == ["-f", "x.yaml", "logs", "-f"]


def test_follow_yields_new_lines_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    log.write_text("old line\n")
    source = LogSource("local-a", "web", log)
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        for _, line in follow([source], stop=done.is_set, interval=0.02):
            seen.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(0.1)
        with log.open("a") as handle:
            handle.write("first\nsec")
            handle.flush()
            time.sleep(0.1)
            handle.write("ond\n")
        time.sleep(0.1)
        log.rename(tmp_path / "web.log.1")  # the supervisor rotates at 10 MiB
        log.write_text("after rotation\n")
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        done.set()
        reader.join(timeout=5)
    assert seen == ["first", "second", "after rotation"]
