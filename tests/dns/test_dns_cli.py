"""``deplat dns status|sync|ttl`` through the CLI, against real BIND servers."""

from __future__ import annotations

import json

import pytest

from deplat.cli import run
from tests.dns.fakes import closed_port, spec_with

pytestmark = pytest.mark.slow

NAMES = ["guestbook.test", "www.guestbook.test"]


def setup(tmp_path, monkeypatch, *servers, extra_dns=()):
    spec = spec_with([ns.dns_entry(f"ns-{i}") for i, ns in enumerate(servers)] + list(extra_dns), tmp_path)
    for ns in servers:
        for key, value in ns.secret_env().items():
            monkeypatch.setenv(key, value)
    return str(spec.source)


def test_dns_status_json_reports_every_provider_and_exits_1_when_they_disagree(
    tmp_path, monkeypatch, capsys, bind_factory
):
    a = bind_factory(records={n: ["127.0.0.11"] for n in NAMES})
    b = bind_factory(records={"guestbook.test": ["127.0.0.11"], "www.guestbook.test": ["127.0.0.12"]})
    path = setup(tmp_path, monkeypatch, a, b)

    code = run(["-f", path, "--json", "dns", "status"])

    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # a split: some users reach another site
    assert doc["ok"] is True and doc["agree"] is False
    assert [p["provider"] for p in doc["providers"]] == ["ns-0", "ns-1"]
    assert doc["providers"][0]["records"]["www.guestbook.test"]["ipv4"] == ["127.0.0.11"]
    assert doc["disagreements"] == {"www.guestbook.test": {"ns-0": "127.0.0.11", "ns-1": "127.0.0.12"}}
    assert a.key_secret not in json.dumps(doc)


def test_dns_status_exits_1_when_a_provider_cannot_answer(tmp_path, monkeypatch, capsys, bind_factory):
    a = bind_factory(records={n: ["127.0.0.11"] for n in NAMES})
    down = {**a.dns_entry("down"), "options": {**a.dns_entry()["options"], "port": closed_port()}}
    path = setup(tmp_path, monkeypatch, a, extra_dns=[down])

    code = run(["-f", path, "--json", "dns", "status"])

    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["ok"] is False
    assert doc["providers"][1]["error_class"] == "transient"


def test_dns_status_table_names_each_provider_and_name(tmp_path, monkeypatch, capsys, bind_factory):
    a = bind_factory(records={n: ["127.0.0.11"] for n in NAMES})
    path = setup(tmp_path, monkeypatch, a)

    code = run(["-f", path, "--no-color", "dns", "status"])

    out = capsys.readouterr().out
    assert code == 0
    assert "ns-0" in out and "www.guestbook.test" in out and "127.0.0.11" in out
    assert "all DNS providers agree" in out


def test_dns_sync_points_every_provider_at_the_current_primary(tmp_path, monkeypatch, capsys, bind_factory):
    a = bind_factory()
    b = bind_factory(records={n: ["127.0.0.99"] for n in NAMES})
    path = setup(tmp_path, monkeypatch, a, b)

    code = run(["-f", path, "--json", "dns", "sync"])

    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["site"] == "local-a"
    assert [p["outcome"] for p in doc["providers"]] == ["switched", "switched"]
    assert a.query("www.guestbook.test") == b.query("guestbook.test") == ["127.0.0.11"]


def test_dns_ttl_lower_then_restore(tmp_path, monkeypatch, capsys, bind_factory):
    a = bind_factory(records={n: ["127.0.0.11"] for n in NAMES})
    path = setup(tmp_path, monkeypatch, a)

    lowered = run(["-f", path, "--json", "dns", "ttl", "--lower", "--to", "20"])
    low_doc = json.loads(capsys.readouterr().out)
    status = run(["-f", path, "--json", "dns", "status"])
    status_doc = json.loads(capsys.readouterr().out)
    restored = run(["-f", path, "--json", "dns", "ttl", "--restore"])
    restore_doc = json.loads(capsys.readouterr().out)

    assert (lowered, status, restored) == (0, 0, 0)
    assert low_doc["ttl"] == 20 and low_doc["providers"][0]["outcome"] == "switched"
    assert status_doc["providers"][0]["records"]["www.guestbook.test"]["ttl"] == 20
    assert restore_doc["ttl"] == 60


def test_dns_ttl_needs_lower_or_restore(tmp_path, monkeypatch, capsys, bind_factory):
    a = bind_factory()
    path = setup(tmp_path, monkeypatch, a)

    code = run(["-f", path, "dns", "ttl"])

    assert code == 2
    assert "--lower" in capsys.readouterr().err
