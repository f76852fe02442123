"""How runs fail under the real ``pulumi`` CLI, and how deplat names each failure (marker ``real_engine``).

Each case is caused for real: a CLI killed with SIGKILL, a Ctrl-C (SIGINT) to the CLI, a wrong
passphrase, a plugin that cannot be downloaded (every download goes to a closed loopback port), a
plugin installed from a file. The classes and hints asserted are the ones ``deplat.engine.errors``
gives the user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deplat import operations
from deplat.engine import locks
from deplat.engine.driver import PulumiDriver
from deplat.events import Event
from deplat.secrets import SecretStore
from tests.engine.conftest import RealEngine

pytestmark = [pytest.mark.real_engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def driver(engine: RealEngine) -> PulumiDriver:
    return PulumiDriver(engine.spec, SecretStore(engine.spec))


def wait_for_lock(engine: RealEngine, site: str, limit: float = 180.0) -> locks.Lock:
    # generous: under load `deplat up` runs its checks and a real preview before the CLI takes the lock
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        held = locks.find_locks(engine.spec, site)
        if held and held[0].pid:
            return held[0]
        time.sleep(0.05)
    raise AssertionError(f"no state lock appeared for {site} within {limit} s")


def wait_until_gone(pid: int, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while locks.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not locks.pid_alive(pid), f"pid {pid} still exists"


def test_lock_left_by_a_killed_run_is_named_stale_and_cleared_on_request(real_engine: RealEngine) -> None:
    spec_path = real_engine.spec.base_dir / "deplat.yaml"
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.real_engine_holder", "up", str(spec_path), "real-a"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = wait_for_lock(real_engine, "real-a")
        assert lock.pid != holder.pid  # the CLI holds the lock, not deplat's process
        assert not lock.stale and lock.path.name.endswith(".json")
        busy = driver(real_engine).up(real_engine.site())
        assert busy.error_class == "locked" and "another run is updating real-a" in (busy.error or "")
        os.kill(lock.pid or 0, signal.SIGKILL)
        holder.kill()
        holder.wait(timeout=30)
        wait_until_gone(lock.pid or 0)  # the CLI, orphaned, is reaped by init
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
    stuck = driver(real_engine).up(real_engine.site())
    assert stuck.error_class == "locked"
    assert "by a run that is gone" in (stuck.error or "") and "--clear-locks" in (stuck.error or "")
    operations.clear_stale_locks(real_engine.spec, [real_engine.site()], lambda event: None)
    assert locks.find_locks(real_engine.spec, "real-a") == []
    after = driver(real_engine).up(real_engine.site())
    assert after.ok, after.error


def test_real_cli_lock_text_is_classified_as_locked(real_engine: RealEngine) -> None:
    """What the CLI itself says when the lock is taken between deplat's check and its own run."""
    from pulumi import automation as auto

    from deplat.engine import passphrase, workspace
    from deplat.engine.errors import classify

    assert driver(real_engine).up(real_engine.site()).ok
    phrase = passphrase.resolve(real_engine.spec, SecretStore(real_engine.spec))
    stack = workspace.open_stack(real_engine.spec, real_engine.site(), phrase, lambda: None, create=False)
    folder = real_engine.state / ".pulumi" / "locks" / "organization" / "engine-check" / "real-a"
    folder.mkdir(parents=True, exist_ok=True)
    foreign_lock = {
        "pid": 1,
        "username": "someone",
        "hostname": "elsewhere",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    (folder / "held-elsewhere.json").write_text(json.dumps(foreign_lock))
    with pytest.raises(auto.CommandError) as caught:
        stack.up(color="never")
    failure = classify([str(caught.value)])
    assert failure.error_class == "locked", str(caught.value)
    assert isinstance(caught.value, auto.ConcurrentUpdateError)


def test_ctrl_c_at_the_terminal_cancels_the_update_cleanly_and_releases_the_lock(
    real_engine: RealEngine,
) -> None:
    """A terminal's Ctrl-C reaches the whole process group: deplat and the pulumi CLI it runs."""
    spec_path = real_engine.spec.base_dir / "deplat.yaml"
    args = ["-f", str(spec_path), "up", "--yes", "--site", "real-a"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.real_engine_holder", "cli", str(spec_path), "real-a", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_lock(real_engine, "real-a")
        time.sleep(0.5)  # the CLI is inside the update: it takes the lock first
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out + err  # interrupted, as shells report it (issue 13)
    assert "canceled" in out, out + err
    assert "Traceback" not in out + err
    assert locks.find_locks(real_engine.spec, "real-a") == []
    again = driver(real_engine).up(real_engine.site())
    assert again.ok, again.error


def test_wrong_passphrase_is_named_with_its_hint(
    real_engine: RealEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deplat.engine import passphrase

    assert driver(real_engine).up(real_engine.site()).ok
    passphrase.forget()
    monkeypatch.setenv("DEPLAT_PASSPHRASE", "not-the-passphrase")
    events: list[Event] = []
    result = driver(real_engine).up(real_engine.site(), events.append)
    assert result.error_class == "passphrase", result.error
    shown = next(e for e in events if e.kind == "site.error")
    assert "DEPLAT_PASSPHRASE" in shown.data["hint"]
    assert "not-the-passphrase" not in json.dumps([e.message for e in events])


def test_missing_plugin_offline_is_named_with_its_hint(real_engine: RealEngine) -> None:
    real_engine.provider.wanted_plugins = [("hcloud", "1.43.3")]
    events: list[Event] = []
    result = driver(real_engine).up(real_engine.site(), events.append)
    assert result.error_class == "plugin", result.error
    shown = next(e for e in events if e.kind == "site.error")
    assert "pulumi plugin install resource NAME VERSION --file" in shown.data["hint"]


def test_plugin_installed_from_a_file_counts_as_installed(real_engine: RealEngine, tmp_path: Path) -> None:
    """deplat reads ``plugin ls --json`` itself (the SDK's list_plugins raises KeyError whenever the CLI
    leaves out lastUsedTime) and sees a plugin installed offline with ``--file``."""
    binary = tmp_path / "pulumi-resource-stand-in"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    subprocess.run(
        [real_engine.pulumi, "plugin", "install", "resource", "stand-in", "v0.0.1", "--file", str(binary)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    listed = json.loads(
        subprocess.run(
            [real_engine.pulumi, "plugin", "ls", "--json"], check=True, capture_output=True, timeout=60
        ).stdout
    )
    assert [(p["name"], p["version"]) for p in listed] == [("stand-in", "0.0.1")]
    real_engine.provider.wanted_plugins = [("stand-in", "0.0.1")]
    events: list[Event] = []
    result = driver(real_engine).up(real_engine.site(), events.append)
    assert result.ok, result.error
    assert not [e for e in events if e.data.get("op") == "plugin"]  # nothing to install
