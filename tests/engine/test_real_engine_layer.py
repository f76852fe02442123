"""The engine layer under the real ``pulumi`` CLI (marker ``real_engine``): an inline program really runs.

The CLI is the one ``.ci/build-pulumi.sh`` builds from Go modules (or the user's own, see README).
No provider plugin is needed: the program's resource is a ComponentResource, which the engine
registers in the state without one. Everything stays on this machine (the embedded file backend).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from deplat.engine import workspace
from deplat.engine.driver import PulumiDriver
from deplat.events import Event, Recorder
from deplat.secrets import MASK, SecretStore
from tests.engine.conftest import PASSPHRASE, REAL_TOKEN, RealEngine

pytestmark = [pytest.mark.real_engine, pytest.mark.slow]


def driver(engine: RealEngine) -> PulumiDriver:
    return PulumiDriver(engine.spec, SecretStore(engine.spec))


def test_up_preview_refresh_destroy_run_the_inline_program_in_the_file_backend(
    real_engine: RealEngine,
) -> None:
    site = real_engine.site()
    rec = Recorder()
    up = driver(real_engine).up(site, rec)
    assert up.ok, up.error
    assert up.changes == {"create": 2}  # the stack and the Box
    assert up.outputs == {"ipv4": "192.0.2.10", "greeting": "hello", "token": MASK}
    checkpoint = real_engine.state / ".pulumi" / "stacks" / "engine-check" / "real-a.json"
    state = json.loads(checkpoint.read_text())
    types = [r["type"] for r in state["checkpoint"]["latest"]["resources"]]
    assert types == ["pulumi:pulumi:Stack", "deplat:test:Box"]
    done = [e for e in rec.events if e.kind == "site.done"]
    assert [(e.data["op"], e.data["name"]) for e in done] == [("create", "box")]

    preview = driver(real_engine).preview(site)
    assert preview.ok, preview.error
    assert set(preview.changes) == {"same"}

    refreshed = driver(real_engine).refresh(site)
    assert refreshed.ok, refreshed.error
    assert refreshed.outputs["greeting"] == "hello"

    status = driver(real_engine).status(site)
    assert status.exists and status.running
    assert status.detail["last_operation"] == "refresh" and status.detail["last_result"] == "succeeded"

    gone = driver(real_engine).destroy(site)
    assert gone.ok, gone.error
    assert gone.changes == {"delete": 2}
    assert not driver(real_engine).status(site).exists
    assert not checkpoint.exists()


def test_existing_stack_is_selected_and_config_follows_the_spec(real_engine: RealEngine) -> None:
    site = real_engine.site()
    assert driver(real_engine).up(site).ok
    real_engine.provider.config["check:greeting"] = ("bonjour", False)
    again = driver(real_engine).up(site)
    assert again.ok, again.error
    assert again.outputs["greeting"] == "bonjour"
    assert again.changes == {"same": 2}  # the Box is unchanged; only an output changed
    settings = (
        real_engine.spec.base_dir / ".deplat" / "pulumi" / "real-a" / "Pulumi.real-a.yaml"
    ).read_text()
    assert "check:greeting: bonjour" in settings and "secure:" in settings


def test_secrets_never_reach_the_backend_or_work_dir_in_plain_text(real_engine: RealEngine) -> None:
    for name in ("real-a", "real-b"):
        result = driver(real_engine).up(real_engine.site(name))
        assert result.ok, result.error
    files = [p for p in (real_engine.spec.base_dir / ".deplat").rglob("*") if p.is_file()]
    assert len(files) >= 6
    for file in files:
        text = file.read_text(errors="replace")
        assert REAL_TOKEN not in text, file
        assert PASSPHRASE not in text, file
    state = (real_engine.state / ".pulumi" / "stacks" / "engine-check" / "real-a.json").read_text()
    assert "4dabf18193072939515e22adb298388d" in state  # the engine's secret signature: stored encrypted
    assert "ciphertext" in state


def test_state_export_keeps_secrets_encrypted_and_restores_a_forgotten_stack(
    real_engine: RealEngine, tmp_path: Path
) -> None:
    """What a failover archives before it forgets a site, and how that site's state comes back."""
    from deplat.engine.passphrase import resolve

    site = real_engine.site()
    assert driver(real_engine).up(site).ok
    phrase = resolve(real_engine.spec, SecretStore(real_engine.spec))
    archive = workspace.export_stack_file(real_engine.spec, site, phrase, tmp_path / "real-a.export.json")
    text = archive.read_text()
    assert REAL_TOKEN not in text and "ciphertext" in text
    exported = json.loads(text)
    assert exported["deployment"]["secrets_providers"]["type"] == "passphrase"

    stack = workspace.open_stack(real_engine.spec, site, phrase, create=False)
    stack.workspace.remove_stack("real-a", force=True)  # forgotten: no state, no stack config left
    assert not driver(real_engine).status(site).exists
    again = workspace.open_stack(real_engine.spec, site, phrase, create=True)
    workspace.import_state(again, exported)
    outputs = again.outputs()
    assert outputs["token"].secret and outputs["token"].value == REAL_TOKEN
    assert outputs["greeting"].value == "hello"
    assert driver(real_engine).status(site).exists


def test_events_arrive_while_the_update_is_still_running(real_engine: RealEngine) -> None:
    import pulumi

    box_done = threading.Event()
    seen_during_run: list[bool] = []

    class Box(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("deplat:test:Box", name)
            self.register_outputs({})

    def program() -> None:
        first = Box("first")

        def wait_for_event(_: object) -> str:
            # runs inside the program, before the update can finish: the event must come now
            seen_during_run.append(box_done.wait(timeout=30))
            return "waited"

        pulumi.export("waited", first.urn.apply(wait_for_event))

    def emit(event: Event) -> None:
        if event.kind == "site.op" and event.data.get("name") == "first":
            box_done.set()

    real_engine.program = program
    result = driver(real_engine).up(real_engine.site(), emit)
    assert result.ok, result.error
    assert seen_during_run == [True]
    assert result.outputs["waited"] == "waited"
