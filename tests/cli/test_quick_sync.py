"""``deplat dns sync`` run from what an earlier command validated, without Typer or the spec model
(``deplat.cli.quick``): the same result as the Typer command, and the Typer command whenever the
quick path cannot be sure. Against real BIND servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deplat.cli import run
from deplat.cli.argv import hoist_globals
from deplat.cli.quick import SyncLine, parse, run_quick
from deplat.dns.sync_inputs import SyncInputs
from deplat.spec import cache_entry, load_spec
from deplat.state import record_failover
from tests.dns.fakes import spec_with
from tests.support.bind import Bind

NAMES = ["guestbook.test", "www.guestbook.test"]


# -- the command line ---------------------------------------------------------------------------


def test_a_dns_sync_line_is_read_with_its_global_options_anywhere() -> None:
    line = parse(hoist_globals(["dns", "sync", "--json", "--timeout", "3", "-f", "x.yaml", "--no-color"]))

    assert line == SyncLine(Path("x.yaml"), json=True, no_color=True, timeout=3.0)
    assert parse(["--file=y.yaml", "--verbose", "dns", "sync", "--timeout=0.5"]) == SyncLine(
        Path("y.yaml"), verbose=True, timeout=0.5
    )
    assert parse(["dns", "sync"]) == SyncLine()


@pytest.mark.parametrize(
    "argv",
    [
        ["dns", "status"],
        ["dns", "sync", "--help"],
        ["dns", "sync", "-h"],
        ["--version", "dns", "sync"],
        ["dns", "sync", "--timeout", "0"],
        ["dns", "sync", "--timeout", "121"],
        ["dns", "sync", "--timeout", "nan"],
        ["dns", "sync", "--timeout", "soon"],
        ["dns", "sync", "--timeout"],
        ["dns", "sync", "extra"],
        ["dns", "sync", "--yes"],
        ["dns"],
        ["sync"],
        [],
    ],
)
def test_any_other_line_is_left_to_the_typer_app(argv: list[str]) -> None:
    assert parse(hoist_globals(argv)) is None


# -- the kept inputs ------------------------------------------------------------------------------


NS = {
    "name": "ns",
    "provider": "rfc2136",
    "options": {"server": "127.0.0.1", "key_name": "deplat", "key_secret": "DNS_TSIG_SECRET"},
}


def test_the_kept_inputs_read_back_as_written(tmp_path: Path) -> None:
    inputs = SyncInputs.of(spec_with([NS], tmp_path))

    again = SyncInputs.from_dict(json.loads(json.dumps(inputs.to_dict())))

    assert again == inputs
    assert again.addresses == {"local-a": "127.0.0.11", "local-b": "127.0.0.12"}
    assert again.zone.names == NAMES
    assert again.primary() is not None and again.primary()[0] == "local-a"  # type: ignore[index]


def test_kept_inputs_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    data = SyncInputs.of(spec_with([NS], tmp_path)).to_dict()

    for broken in (
        {**data, "addresses": ["local-a"]},
        {**data, "zone": {**data["zone"], "ttl": "60"}},
        {**data, "sdk_modules": [1]},
        {k: v for k, v in data.items() if k != "active_file"},
    ):
        with pytest.raises((TypeError, KeyError)):
            SyncInputs.from_dict(broken)


def test_a_primary_whose_address_only_its_driver_knows_is_left_to_the_typer_app(tmp_path: Path) -> None:
    inputs = SyncInputs.of(spec_with([NS], tmp_path))
    cloud = SyncInputs.from_dict(
        {**inputs.to_dict(), "addresses": {"local-a": None, "local-b": "127.0.0.12"}}
    )

    assert cloud.primary() is None


def test_inputs_that_cannot_be_taken_leave_the_spec_cached_and_dns_sync_to_the_typer_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: Any) -> SyncInputs:
        raise RuntimeError("a bug in taking the inputs")

    monkeypatch.setattr(SyncInputs, "of", broken)
    (tmp_path / ".deplat").mkdir(mode=0o700)

    spec = spec_with([NS], tmp_path)  # validated and kept all the same

    assert spec.app == "guestbook"
    kept = json.loads(cache_entry.cache_file(tmp_path / "deplat.yaml").read_text())
    assert kept["spec"]["app"] == "guestbook" and kept["dns_sync"] is None
    assert run_quick(["-f", str(tmp_path / "deplat.yaml"), "dns", "sync"]) is None


# -- against BIND -----------------------------------------------------------------------------------


def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *servers: Bind) -> str:
    """A spec in a folder deplat has worked in (``.deplat/`` exists), pointing at ``servers``."""
    spec = spec_with([ns.dns_entry(f"ns-{i}") for i, ns in enumerate(servers)], tmp_path)
    (tmp_path / ".deplat").mkdir(mode=0o700)  # after spec_with validated it: nothing kept yet
    for ns in servers:
        for key, value in ns.secret_env().items():
            monkeypatch.setenv(key, value)
    return str(spec.source)


@pytest.fixture
def synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bind_factory: Any
) -> tuple[Bind, str]:
    """A BIND, and a project whose first ``dns sync`` (the Typer command) kept what the quick path
    reads: the server and the spec file."""
    ns = bind_factory()
    spec = project(tmp_path, monkeypatch, ns)
    assert run(["-f", spec, "dns", "sync"]) == 0
    capsys.readouterr()
    return ns, spec


def put_back(*servers: Bind) -> None:
    """The app's names on an old address again, as before a sync (an RFC 2136 update)."""
    import dns.query
    import dns.tsigkeyring
    import dns.update

    for ns in servers:
        keyring = dns.tsigkeyring.from_text({ns.key_name: ns.key_secret})
        update = dns.update.UpdateMessage(ns.zone, keyring=keyring, keyname=ns.key_name)
        for name in NAMES:
            update.replace(name + ".", 60, "A", "127.0.0.99")
        dns.query.tcp(update, ns.host, port=ns.port, timeout=5)


def without_seconds(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: without_seconds(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [without_seconds(v) for v in doc]
    return doc


@pytest.mark.slow
def test_dns_sync_from_the_kept_inputs_gives_what_the_typer_command_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bind_factory: Any
) -> None:
    a, b = bind_factory(), bind_factory()
    spec = project(tmp_path, monkeypatch, a, b)
    args = ["-f", spec, "--json", "dns", "sync"]
    assert run_quick(args) is None  # nothing kept yet: the Typer command validates the spec
    put_back(a, b)
    assert run(args) == 0
    typer_doc = json.loads(capsys.readouterr().out)
    put_back(a, b)

    code = run_quick(args)

    quick_doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert without_seconds(quick_doc) == without_seconds(typer_doc)
    assert [p["outcome"] for p in quick_doc["providers"]] == ["switched", "switched"]
    assert a.query("www.guestbook.test") == b.query("guestbook.test") == ["127.0.0.11"]
    for ns in (a, b):
        assert ns.key_secret not in json.dumps(quick_doc)

    assert run_quick(["-f", spec, "--no-color", "dns", "sync"]) == 0  # nothing to write now
    text = capsys.readouterr().out
    assert text.startswith("primary local-a: 127.0.0.11\n")
    assert "already" in text and "ns-1" in text


@pytest.mark.slow
def test_dns_sync_from_the_kept_inputs_follows_a_failover(
    synced: tuple[Bind, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, spec = synced
    record_failover(load_spec(spec), "local-a", "local-b", "test")  # the active set changed, not the spec

    code = run_quick(["-f", spec, "--json", "dns", "sync"])

    assert code == 0
    assert json.loads(capsys.readouterr().out)["site"] == "local-b"
    assert a.query("www.guestbook.test") == ["127.0.0.12"]


@pytest.mark.slow
def test_a_provider_that_fails_exits_1_on_the_quick_path_too(
    synced: tuple[Bind, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, spec = synced
    put_back(a)  # a write is needed
    monkeypatch.setenv(a.secret_name, "d3Jvbmcga2V5IG9mIDMyIGJ5dGVzLCBub3QgdGhlIG9uZSE=")  # a wrong key

    code = run_quick(["-f", spec, "--json", "dns", "sync"])

    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["providers"][0]["outcome"] == "failed"
    assert doc["providers"][0]["error_class"] == "auth"
    a.stop()
    assert run_quick(["-f", spec, "--json", "dns", "sync"]) == 1
    assert json.loads(capsys.readouterr().out)["providers"][0]["error_class"] == "transient"


@pytest.mark.slow
def test_what_the_quick_path_cannot_trust_goes_to_the_typer_command(
    synced: tuple[Bind, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, spec = synced
    args = ["-f", spec, "dns", "sync"]
    assert run_quick(args) == 0
    kept = cache_entry.cache_file(Path(spec))

    kept.chmod(0o644)  # not owner-only: not trusted
    assert run_quick(args) is None
    kept.chmod(0o600)
    folder = Path(spec).parent
    active = folder / ".deplat" / "active.json"
    active.write_text("{not json")  # the Typer command says what is wrong with it
    assert run_quick(args) is None
    active.unlink()
    secrets_file = folder / "secrets.env"
    Path(spec).write_text(Path(spec).read_text() + f"secrets_file: {secrets_file.name}\n")
    assert run_quick(args) is None  # the spec changed: validated again by the Typer command
    assert run(args) == 0
    secrets_file.write_text("not a line of NAME and value\n")
    assert run_quick(args) is None  # a broken secrets file: the Typer command names its line
    assert run(args) == 2
    assert "expected NAME=value" in capsys.readouterr().err
    secrets_file.write_text(f"{a.secret_name}={a.key_secret}\n")
    monkeypatch.delenv(a.secret_name)
    assert run_quick(args) == 0  # the key from the secrets file
