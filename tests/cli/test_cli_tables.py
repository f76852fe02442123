"""Tables fit 80 columns: URLs and names are never cut or broken mid-word; only free text wraps;
times read as relative ("3 min ago") or carry a date and zone."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from rich.console import Console

from deplat.cli import run
from deplat.cli.argv import hoist_globals
from deplat.cli.render.sites import ago, doctor_table, results_table, status_table
from deplat.engine.doctor import Check
from deplat.site_results import SiteResult, SiteStatus
from tests.support.local_sites import Guestbook

NOW = 1_800_000_000.0


def at_80(renderable: object) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=80, soft_wrap=True, no_color=True).print(renderable)
    return out.getvalue().splitlines()


def test_times_read_as_relative_or_carry_a_date_and_zone() -> None:
    assert ago(NOW - 2, NOW) == "just now"
    assert ago(NOW - 42, NOW) == "42 s ago"
    assert ago(NOW - 180, NOW) == "3 min ago"
    assert ago(NOW - 7200, NOW) == "2 h ago"
    assert ago(NOW - 3 * 86400, NOW) == "3 days ago"
    old = ago(NOW - 30 * 86400, NOW)
    assert old == time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(NOW - 30 * 86400)) and old[-1].isalpha()


def test_status_fits_80_columns_with_urls_whole_and_the_note_wrapped() -> None:
    statuses = [
        SiteStatus("local-a", "local", "primary", True, True, NOW - 180, {"url": "http://127.0.0.11:18080/"}),
        SiteStatus("aws-fra", "aws", "warm", True, True, NOW - 7200,
                   {"ipv4": "203.0.113.7", "url": "https://guestbook.example.org/"}),
        SiteStatus("gcp-ew", "gcp", "cold", False, False,
                   detail={"skipped": "cold standby: stood up on failover, or with --site gcp-ew"}),
    ]  # fmt: skip
    lines = at_80(status_table(statuses, now=NOW))
    assert max(map(len, lines)) <= 80
    text = "\n".join(lines)
    for whole in ("http://127.0.0.11:18080/", "203.0.113.7", "https://guestbook.example.org/", "3 min ago"):
        assert whole in text
    assert "none" in text and "gcp-ew: cold standby: stood up on failover" in text


def test_results_fit_80_columns() -> None:
    results = [
        SiteResult("local-a", "up", True, {"create": 1}, {"url": "http://127.0.0.11:18080/"}),
        SiteResult("local-b", "up", False, {"create": 1}, {"url": "http://127.0.0.12:18080/"},
                   error="canceled", error_class="canceled"),
    ]  # fmt: skip
    lines = at_80(results_table(results, {"local-a": "primary", "local-b": "warm"}, {"local-c": "cold"}))
    assert max(map(len, lines)) <= 80
    assert "http://127.0.0.12:18080/" in "\n".join(lines)


def test_doctor_keeps_paths_urls_and_variable_names_whole() -> None:
    checks = [
        Check("pulumi CLI", False, "not found on PATH or in ~/.pulumi",
              "install it with `deplat doctor --install-pulumi`, or see https://www.pulumi.com/docs/install/"),
        Check("secret GUESTBOOK_ADMIN_TOKEN", False, "not set (service web needs it)",
              "export GUESTBOOK_ADMIN_TOKEN=..."),
        Check("state backend", True, "/work/examples/guestbook/.deplat/state is writable"),
    ]  # fmt: skip
    lines = at_80(doctor_table(checks))
    assert max(map(len, lines)) <= 80
    text = "\n".join(lines)
    for whole in ("https://www.pulumi.com/docs/install/", "export GUESTBOOK_ADMIN_TOKEN=...",
                  "/work/examples/guestbook/.deplat/state", "secret GUESTBOOK_ADMIN_TOKEN"):  # fmt: skip
        assert whole in text


@pytest.mark.slow
def test_status_of_real_local_sites_at_80_columns(
    make_guestbook: Callable[..., Guestbook], capsys: pytest.CaptureFixture[str]
) -> None:
    book = make_guestbook(sites=3)
    assert book.driver.up(book.sites[0]).ok
    assert run(hoist_globals(["--no-color", "-f", str(book.spec_path), "status"])) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert book.url("local-a") in out and "just now" in out


@pytest.mark.slow
def test_plan_at_80_columns_cuts_no_type_name_or_value(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    cloud = Path(__file__).resolve().parents[2] / "examples/cloud/deplat.yaml"
    assert run(["--no-color", "-f", str(cloud), "plan", "--offline", "--site", "aws-fra"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for whole in ("aws:s3.BucketPublicAccessBlock", "aws-fra-backups-versioning",
                  "versioningConfiguration.status=Enabled", "restrictPublicBuckets=true"):  # fmt: skip
        assert whole in out
