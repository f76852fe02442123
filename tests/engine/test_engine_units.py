"""The engine's small parts on their own: the error table, the passphrase, event translation, rendering,
and which sites an operation covers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.automation import events as pe
from rich.console import Console

from deplat import operations
from deplat.cli.render.sites import SiteBoard, failure_lines, results_table, status_table
from deplat.engine import passphrase
from deplat.engine.errors import TABLE, classify
from deplat.engine.events import EventTranslator
from deplat.errors import ErrorClass, InputError
from deplat.events import Event, Recorder
from deplat.secrets import SecretStore
from deplat.sites import SiteResult, SiteStatus
from deplat.spec import load_spec
from deplat.spec.model import Spec
from deplat.state import record_failover
from tests.engine.conftest import write_spec

# ---------------------------------------------------------------- the error table

LOCKED = (
    "code: 255\n stderr: error: the stack is currently locked by 1 lock(s). Either wait for the other "
    "process(es) to end or delete the lock file with `pulumi cancel`."
)


@pytest.mark.parametrize(
    ("text", "error_class"),
    [
        (LOCKED, "locked"),
        ("code: 255\n stderr: error: [409] Conflict: Another update is currently in progress.", "locked"),
        ("code: 255\n stdout: \n stderr: error: update canceled", "canceled"),
        ("code: 255\n stderr: error: incorrect passphrase", "passphrase"),
        ("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or ...", "passphrase"),
        ("error: could not find plugin for provider 'aws'", "plugin"),
        ("error: no stack named 'x' found", "fatal"),
    ],
)
def test_engine_texts_are_classified_before_the_provider_is_asked(text: str, error_class: str) -> None:
    asked: list[str] = []

    def provider(t: str) -> str:
        asked.append(t)
        return "suspended"

    failure = classify([text], provider)
    assert failure.error_class is ErrorClass(error_class)
    assert asked == []
    assert failure.words == ErrorClass(error_class).words


def test_every_class_the_engine_table_gives_is_an_error_class_with_words_and_a_hint() -> None:
    classes = {cls for _, cls, _ in TABLE} - {ErrorClass.FATAL}
    assert classes == {ErrorClass.LOCKED, ErrorClass.CANCELED, ErrorClass.PASSPHRASE, ErrorClass.PLUGIN}
    for cls in classes:
        assert isinstance(cls, ErrorClass) and cls.words and cls.hint


def test_a_provider_word_deplat_does_not_know_is_fatal_not_passed_through() -> None:
    assert classify(["odd"], lambda t: "teapot").error_class is ErrorClass.FATAL


def test_the_provider_classifies_what_the_engine_table_does_not_know() -> None:
    failure = classify(
        ["stderr: error: update failed"], lambda t: "transient", diagnostics=["throttled (503)"]
    )
    assert failure.error_class == "transient" and failure.message == "throttled (503)"
    assert failure.hint and "retry" in failure.hint


def test_a_broken_provider_classifier_falls_back_to_fatal() -> None:
    def broken(text: str) -> str:
        raise ValueError("bug")

    assert classify(["something odd"], broken).error_class == "fatal"


def test_classified_messages_are_masked() -> None:
    store = SecretStore(environ={"TOKEN": "s3cr3t-value"})
    store.get("TOKEN")
    failure = classify(["error: bad token s3cr3t-value"], None, store.masker.text)
    assert "s3cr3t-value" not in failure.message and "********" in failure.message


# ---------------------------------------------------------------- the passphrase


@pytest.fixture
def fresh_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEPLAT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE", "SHOP_STATE_PASS"):
        monkeypatch.delenv(name, raising=False)
    passphrase.forget()
    passphrase.set_prompt(None)
    yield
    passphrase.forget()
    passphrase.set_prompt(None)


def spec_with_state(tmp_path: Path, state: str = "") -> Spec:
    text = (Path(__file__).parent / "conftest.py").read_text()  # reuse the cloud spec text
    base = text.split('SPEC = """\\\n', 1)[1].split('"""', 1)[0]
    return load_spec(write_spec(tmp_path / "p", base + state))


def test_passphrase_sources_in_order(
    tmp_path: Path, fresh_passphrase: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_with_state(tmp_path)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "from-pulumi-var")
    assert passphrase.resolve(spec, SecretStore(spec)) == "from-pulumi-var"
    passphrase.forget()
    monkeypatch.setenv("DEPLAT_PASSPHRASE", "from-deplat-var")
    assert passphrase.resolve(spec, SecretStore(spec)) == "from-deplat-var"


def test_passphrase_from_the_specs_env_or_file(
    tmp_path: Path, fresh_passphrase: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLAT_PASSPHRASE", "not-this-one")
    spec = spec_with_state(tmp_path, "state: {passphrase: {env: SHOP_STATE_PASS, file: pass.txt}}\n")
    (spec.base_dir / "pass.txt").write_text("from-the-file\n")
    secrets = SecretStore(spec)
    assert passphrase.resolve(spec, secrets) == "from-the-file"
    assert secrets.masker.text("x from-the-file y") == "x ******** y"
    passphrase.forget()
    monkeypatch.setenv("SHOP_STATE_PASS", "from-the-named-var")
    assert passphrase.resolve(spec, SecretStore(spec)) == "from-the-named-var"


def test_passphrase_prompt_is_asked_once(tmp_path: Path, fresh_passphrase: None) -> None:
    spec = spec_with_state(tmp_path)
    asked: list[str] = []
    passphrase.set_prompt(lambda text: asked.append(text) or "typed-in-secret")
    assert passphrase.resolve(spec, SecretStore(spec)) == "typed-in-secret"
    assert passphrase.resolve(spec, SecretStore(spec)) == "typed-in-secret"
    assert len(asked) == 1
    assert not list(spec.base_dir.rglob("*pass*")) or all(
        "typed-in-secret" not in p.read_text() for p in spec.base_dir.rglob("*") if p.is_file()
    )


def test_no_passphrase_anywhere_is_an_input_error_with_the_fix(
    tmp_path: Path, fresh_passphrase: None
) -> None:
    spec = spec_with_state(tmp_path)
    with pytest.raises(InputError) as err:
        passphrase.resolve(spec, SecretStore(spec))
    assert "DEPLAT_PASSPHRASE" in (err.value.hint or "")


def test_unreadable_passphrase_file_names_the_file(tmp_path: Path, fresh_passphrase: None) -> None:
    spec = spec_with_state(tmp_path, "state: {passphrase: {file: missing.txt}}\n")
    with pytest.raises(InputError, match=r"missing\.txt"):
        passphrase.resolve(spec, SecretStore(spec))


# ---------------------------------------------------------------- engine events


def engine_event(**kind: Any) -> pe.EngineEvent:
    return pe.EngineEvent.from_json({"sequence": 1, "timestamp": 0, **kind})


def meta(op: str, name: str, typ: str = "aws:ec2/instance:Instance") -> dict[str, Any]:
    return {"metadata": {"op": op, "urn": f"urn:pulumi:s::p::{typ}::{name}", "type": typ, "provider": ""}}


def test_engine_events_become_site_events_with_counts() -> None:
    rec = Recorder()
    translate = EventTranslator("aws-a", rec)
    translate(engine_event(resourcePreEvent=meta("create", "web", "pulumi:pulumi:Stack")))
    translate(engine_event(resourcePreEvent=meta("create", "web")))
    translate(engine_event(resOutputsEvent=meta("create", "web")))
    translate(engine_event(resOutputsEvent=meta("same", "fw", "aws:ec2/securityGroup:SecurityGroup")))
    translate(engine_event(diagnosticEvent={"message": "warning: old\n", "severity": "warning"}))
    translate(engine_event(diagnosticEvent={"message": "debug only", "severity": "info"}))
    translate(engine_event(summaryEvent={"resourceChanges": {"create": 1, "same": 1}, "durationSeconds": 3}))
    assert rec.kinds() == ["site.op", "site.done", "site.done", "site.diag", "site.summary"]
    assert rec.events[0].message == "create aws:ec2/instance:Instance web"
    assert rec.events[2].data["counts"] == {"create": 1, "same": 1} and rec.events[2].data["quiet"]
    assert rec.events[-1].data == {"changes": {"create": 1, "same": 1}, "seconds": 3}
    assert all(e.site == "aws-a" for e in rec.events)


def test_error_diagnostics_are_kept_masked_and_a_bad_event_never_raises() -> None:
    rec = Recorder()
    translate = EventTranslator("hc-b", rec, mask=lambda s: s.replace("tok-123", "********"))
    translate(
        engine_event(diagnosticEvent={"message": "error: token tok-123 refused\n", "severity": "error"})
    )
    translate(SimpleNamespace())  # not an engine event at all
    assert translate.errors == ["error: token ******** refused"]
    assert rec.events[0].message == "error: token ******** refused"
    assert rec.events[1].kind == "site.diag" and rec.events[1].data["severity"] == "warning"


# ---------------------------------------------------------------- rendering


def console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=terminal, no_color=True, highlight=False), out


def test_plain_lines_when_not_a_terminal() -> None:
    con, out = console()
    with SiteBoard(con, [("aws-a", "primary"), ("hc-b", "warm")], live=False) as board:
        board(Event("site.start", "up started", site="aws-a"))
        board(Event("site.op", "create aws:ec2/instance:Instance web", site="aws-a", data={"counts": {}}))
        board(Event("site.op", "same x", site="aws-a", data={"quiet": True}))
        board(Event("site.done", "create ... done", site="aws-a", data={"counts": {"create": 1}}))
        board(Event("site.error", "transient: throttled", site="hc-b", data={"error_class": "transient"}))
        board(Event("site.end", "throttled", site="hc-b", data={"ok": False, "error_class": "transient"}))
        board(Event("site.end", "ok", site="aws-a", data={"ok": True, "changes": {"create": 1}}))
    lines = out.getvalue().splitlines()
    assert lines == [
        "aws-a: up started",
        "aws-a: create aws:ec2/instance:Instance web",
        "hc-b: transient: throttled",
        "hc-b: failed (transient)",
        "aws-a: done",
    ]


def test_live_board_shows_each_sites_state_counts_and_error() -> None:
    con, out = console(terminal=True)
    with SiteBoard(con, [("aws-a", "primary"), ("hc-b", "warm")], live=True) as board:
        board(Event("site.start", "up started", site="aws-a"))
        board(Event("site.done", "create web done", site="aws-a", data={"counts": {"create": 2}}))
        board(Event("site.error", "account suspended or forbidden: blocked", site="hc-b"))
        board(Event("site.end", "blocked", site="hc-b", data={"ok": False, "error_class": "suspended"}))
        board(Event("site.end", "ok", site="aws-a", data={"ok": True, "changes": {"create": 2}}))
    final = out.getvalue()
    assert "2 create" in final and "account suspended or forbidden: blocked" in final
    assert "failed" in final and "ok" in final


def test_closing_table_has_site_role_address_and_url_uncut() -> None:
    results = [
        SiteResult(
            "aws-a", "up", True, {"create": 4}, {"ipv4": "203.0.113.7", "url": "https://shop.example.org/"}
        ),
        SiteResult("hc-b", "up", False, error="blocked", error_class="suspended"),
    ]
    out = io.StringIO()
    con = Console(file=out, width=60, soft_wrap=True, no_color=True)  # as render.make_console, narrow
    con.print(results_table(results, {"aws-a": "primary", "hc-b": "warm"}, {"gcp-c": "cold standby"}))
    text = out.getvalue()
    assert "https://shop.example.org/" in text and "203.0.113.7" in text
    assert "FAILED: suspended" in text and "skipped" in text
    assert failure_lines(results)[0].endswith("account suspended or forbidden: blocked")


@pytest.mark.parametrize(
    ("error_class", "words", "in_hint"),
    [
        (ErrorClass.LOCKED, "locked by another run", "--clear-locks"),
        (ErrorClass.CANCELED, "canceled", "again"),
        (ErrorClass.PASSPHRASE, "wrong passphrase", "DEPLAT_PASSPHRASE"),
        (ErrorClass.PLUGIN, "provider plugin missing", "pulumi plugin install"),
        (ErrorClass.CREDENTIALS, "credentials missing or refused", "deplat doctor"),
    ],
)
def test_an_engine_failure_shows_its_words_and_hint_and_its_value_in_json(
    error_class: ErrorClass, words: str, in_hint: str
) -> None:
    result = SiteResult("hc-b", "up", False, error="it failed", error_class=error_class)
    lines = failure_lines([result])
    assert lines[0].endswith(f"{words}: it failed")
    assert in_hint in lines[1] and "hint:" in lines[1]
    assert json.loads(json.dumps(result.to_dict()))["error_class"] == error_class.value


def test_a_class_word_from_an_older_record_is_shown_as_it_is() -> None:
    lines = failure_lines([SiteResult("hc-b", "up", False, error="x", error_class="gone-word")])
    assert lines == ["[bold red]hc-b[/]: gone-word: x"]


def test_status_table_lists_every_site() -> None:
    con, out = console()
    con.print(
        status_table(
            [
                SiteStatus("aws-a", "aws", "primary", True, True, 1.7e9, {"ipv4": "203.0.113.7"}),
                SiteStatus("gcp-c", "gcp", "fenced", False, False, detail={"skipped": "fenced"}),
            ]
        )
    )
    text = out.getvalue()
    assert "203.0.113.7" in text and "fenced" in text


# ---------------------------------------------------------------- which sites


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    from tests.engine.conftest import SPEC

    return load_spec(write_spec(tmp_path / "sel", SPEC))


def test_up_skips_cold_standbys_unless_named_and_destroy_covers_them(spec: Spec) -> None:
    up = operations.select_sites(spec, None, "up")
    assert [s.name for s in up.sites] == ["aws-a", "hc-b"] and list(up.skipped) == ["gcp-c"]
    assert [s.name for s in operations.select_sites(spec, ["gcp-c"], "up").sites] == ["gcp-c"]
    assert [s.name for s in operations.select_sites(spec, None, "destroy").sites] == [
        "aws-a",
        "hc-b",
        "gcp-c",
    ]
    assert [s.name for s in operations.select_sites(spec, None, "refresh").sites] == ["aws-a", "hc-b"]


def test_roles_follow_the_active_set_and_fenced_cloud_sites_are_skipped_unless_named(spec: Spec) -> None:
    record_failover(spec, "aws-a", "gcp-c", "suspended")
    sel = operations.select_sites(spec, None, "destroy")
    assert [s.name for s in sel.sites] == ["hc-b", "gcp-c"] and sel.roles["gcp-c"] == "primary"
    assert "fenced" in sel.skipped["aws-a"] and "suspended" in sel.skipped["aws-a"]
    named = operations.select_sites(spec, ["aws-a"], "destroy")  # asked for by name: acted on
    assert [s.name for s in named.sites] == ["aws-a"] and named.roles["aws-a"] == "fenced"
    assert operations.select_sites(spec, ["aws-a"], "up").sites == []  # back only through rejoin
    assert json.loads((spec.base_dir / ".deplat" / "active.json").read_text())["primary"] == "gcp-c"


def test_an_unknown_site_name_lists_the_valid_ones(spec: Spec) -> None:
    with pytest.raises(InputError) as err:
        operations.select_sites(spec, ["aws-z"], "up")
    assert "aws-z" in err.value.message and "aws-a, hc-b, gcp-c" in (err.value.hint or "")


def test_a_failing_driver_is_one_failed_site(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def up(self, site: Any, emit: Any) -> SiteResult:
            if site.name == "aws-a":
                raise RuntimeError("kaboom")
            return SiteResult(site.name, "up", True)

    monkeypatch.setattr(operations, "driver_for", lambda spec, site, secrets: Exploding())
    results = operations.run_sites(spec, spec.sites, "up", SecretStore(spec))
    assert [(r.site, r.ok) for r in results] == [("aws-a", False), ("hc-b", True), ("gcp-c", True)]
    assert "RuntimeError: kaboom" in (results[0].error or "")
