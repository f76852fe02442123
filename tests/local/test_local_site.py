"""Local sites end to end: real supervisor processes, the real guestbook, real HTTP on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from deplat.events import Recorder
from deplat.local import sitestate
from tests.support.local_sites import Guestbook, free_port

pytestmark = pytest.mark.slow

Make = Callable[..., Guestbook]


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2.0, trust_env=False)


def sign(book: Guestbook, site: str, message: str) -> None:
    response = httpx.post(
        book.url(site, "/entries"), json={"name": "t", "message": message}, timeout=2.0, trust_env=False
    )
    assert response.status_code == 201


def service_pid(book: Guestbook, site: str, service: str = "web") -> int:
    return book.driver.status(book.spec.site(site)).detail["services"][service]["pid"]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def second_service(data: dict[str, Any], port: int) -> None:
    """Add ``notes``: a second guestbook on another port of the same site."""
    notes = json.loads(json.dumps(data["services"]["web"]))
    notes["ports"][0]["port"] = port
    notes["health"]["port"] = port
    notes["env"] = {"GUESTBOOK_TITLE": "notes"}
    data["services"]["notes"] = notes


def test_up_serves_the_guestbook_and_status_reports_it(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    events = Recorder()

    result = book.driver.up(site, events)

    assert result.ok, result.error
    assert result.changes == {"create": 1}
    address = book.data["sites"][0]["options"]["address"]
    assert result.outputs["ipv4"] == address
    assert result.outputs["url"] == book.url("local-a")
    health = get(book.url("local-a", "/healthz")).json()
    assert health["ok"] is True and health["site"] == "local-a"
    assert "site.op" in events.kinds()

    status = book.driver.status(site)
    assert status.exists and status.running
    assert status.provider == "local" and status.role == "primary"
    web = status.detail["services"]["web"]
    assert web["alive"] and web["healthy"] and web["restarts"] == 0
    assert sitestate.process_alive(web["pid"])
    assert status.outputs["url"] == result.outputs["url"]
    assert status.last_update and status.last_update <= time.time()
    assert book.driver.addresses(site).ipv4 == [address]
    data_dir = book.site_dir("local-a") / "data" / "web"
    assert (data_dir / "entries.jsonl").exists() or data_dir.is_dir()
    assert (book.site_dir("local-a") / "logs" / "web.log").read_text().count("started pid") == 1


def test_second_up_changes_nothing(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    before = service_pid(book, "local-a")
    supervisor_before = sitestate.supervisor_pid(book.site_dir("local-a"))

    book.write()  # a fresh load of the same spec, as a second `deplat up` would do
    again = book.driver.up(book.spec.site("local-a"))

    assert again.ok and again.changes == {"same": 1}
    assert service_pid(book, "local-a") == before
    assert sitestate.supervisor_pid(book.site_dir("local-a")) == supervisor_before


def test_crashed_service_comes_back_with_its_data(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    sign(book, "local-a", "written before the crash")
    pid = service_pid(book, "local-a")

    os.kill(pid, signal.SIGKILL)

    def back() -> bool:
        web = book.driver.status(site).detail["services"]["web"]
        return bool(web["pid"] and web["pid"] != pid and web["healthy"])

    wait_for(back, timeout=5.0)
    web = book.driver.status(site).detail["services"]["web"]
    assert web["restarts"] == 1
    messages = [e["message"] for e in get(book.url("local-a", "/entries")).json()]
    assert messages == ["written before the crash"]
    log = (book.site_dir("local-a") / "logs" / "web.log").read_text()
    assert "was killed by SIGKILL" in log


def test_changed_service_is_the_only_one_restarted(make_guestbook: Make) -> None:
    book = make_guestbook(edit=lambda d: second_service(d, free_port([d["sites"][0]["options"]["address"]])))
    assert book.driver.up(book.spec.site("local-a")).changes == {"create": 2}
    web, notes = service_pid(book, "local-a", "web"), service_pid(book, "local-a", "notes")

    book.data["services"]["notes"]["env"]["GUESTBOOK_TITLE"] = "notes v2"
    book.write()
    result = book.driver.up(book.spec.site("local-a"))

    assert result.ok, result.error
    assert result.changes == {"update": 1, "same": 1}
    assert service_pid(book, "local-a", "web") == web
    assert service_pid(book, "local-a", "notes") != notes
    assert not sitestate.process_alive(notes)


def test_removed_service_is_stopped(make_guestbook: Make) -> None:
    book = make_guestbook(edit=lambda d: second_service(d, free_port([d["sites"][0]["options"]["address"]])))
    assert book.driver.up(book.spec.site("local-a")).ok
    notes = service_pid(book, "local-a", "notes")

    del book.data["services"]["notes"]
    book.write()
    result = book.driver.up(book.spec.site("local-a"))

    assert result.changes == {"delete": 1, "same": 1}
    assert not sitestate.process_alive(notes)
    assert set(book.driver.status(book.spec.site("local-a")).detail["services"]) == {"web"}


def test_supervisor_outlives_the_process_that_ran_up(make_guestbook: Make) -> None:
    book = make_guestbook()
    script = (
        "import sys\n"
        "from deplat.spec.loader import load_spec\n"
        "from deplat.secrets import SecretStore\n"
        "from deplat.local.driver import LocalDriver\n"
        f"spec = load_spec({str(book.spec_path)!r})\n"
        "result = LocalDriver(spec, SecretStore(spec)).up(spec.site('local-a'))\n"
        "sys.exit(0 if result.ok else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    assert get(book.url("local-a", "/healthz")).status_code == 200
    status = book.driver.status(book.spec.site("local-a"))
    assert status.running and status.detail["supervisor"]["alive"]


def test_destroy_stops_everything_and_keeps_the_data(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    sign(book, "local-a", "kept")
    pids = book.pids()

    result = book.driver.destroy(site)

    assert result.ok and result.changes == {"delete": 1}
    assert pids and not any(sitestate.process_alive(pid, ident) for pid, ident in pids)
    with pytest.raises(httpx.ConnectError):
        get(book.url("local-a", "/healthz"))
    status = book.driver.status(site)
    assert not status.exists and not status.running
    site_dir = book.site_dir("local-a")
    assert not (site_dir / "state.json").exists() and not (site_dir / "logs").exists()
    assert "kept" in (site_dir / "data" / "web" / "entries.jsonl").read_text()

    assert book.driver.up(site).changes == {"create": 1}  # stood up again, on the same data
    assert [e["message"] for e in get(book.url("local-a", "/entries")).json()] == ["kept"]


def test_destroy_with_purge_removes_the_data(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    sign(book, "local-a", "gone")

    assert book.driver.destroy(site, purge=True).ok

    assert not book.site_dir("local-a").exists()


def test_destroy_of_a_site_never_stood_up_is_a_no_op(make_guestbook: Make) -> None:
    book = make_guestbook()
    result = book.driver.destroy(book.spec.site("local-a"))
    assert result.ok and result.changes == {}
    status = book.driver.status(book.spec.site("local-a"))
    assert not status.exists and status.detail == {}


def test_sites_run_side_by_side_on_their_own_addresses(make_guestbook: Make) -> None:
    book = make_guestbook(sites=2)
    for site in book.sites:
        assert book.driver.up(site).ok
    sign(book, "local-a", "only on a")

    assert [e["message"] for e in get(book.url("local-a", "/entries")).json()] == ["only on a"]
    assert get(book.url("local-b", "/entries")).json() == []
    assert get(book.url("local-b", "/healthz")).json()["site"] == "local-b"


def test_killed_supervisor_is_replaced_on_the_next_up(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    supervisor = sitestate.supervisor_pid(book.site_dir("local-a"))
    service = service_pid(book, "local-a")

    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: sitestate.supervisor_pid(book.site_dir("local-a")) is None, timeout=5)
    assert not book.driver.status(site).running

    result = book.driver.up(site)

    assert result.ok, result.error
    assert result.changes == {"create": 1}
    assert not sitestate.process_alive(service)
    assert sitestate.supervisor_pid(book.site_dir("local-a")) not in (None, supervisor)
    assert get(book.url("local-a", "/healthz")).status_code == 200


def test_refresh_marks_the_services_of_a_dead_supervisor_stopped(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    assert book.driver.refresh(site).changes == {"same": 1}
    supervisor = sitestate.supervisor_pid(book.site_dir("local-a"))
    assert supervisor

    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: sitestate.supervisor_pid(book.site_dir("local-a")) is None, timeout=5)
    result = book.driver.refresh(site)

    assert result.ok and result.changes == {"update": 1}
    web = book.driver.status(site).detail["services"]["web"]
    assert web["state"] == "stopped" and web["pid"] is None


def test_a_service_that_keeps_exiting_fails_up_with_the_reason_and_its_log(make_guestbook: Make) -> None:
    def broken(data: dict[str, Any]) -> None:
        data["services"]["web"]["local"]["command"] = [
            "python3",
            "-c",
            "import sys; print('cannot open the database', flush=True); sys.exit(3)",
        ]

    book = make_guestbook(edit=broken)
    started = time.monotonic()

    result = book.driver.up(book.spec.site("local-a"))

    assert not result.ok
    assert time.monotonic() - started < 5.0
    assert result.error_class == "fatal"
    assert result.error and "keeps exiting (last exit code 3)" in result.error
    assert "cannot open the database" in result.error


def test_a_service_that_never_answers_fails_up_after_the_health_timeout(make_guestbook: Make) -> None:
    def wrong_path(data: dict[str, Any]) -> None:
        data["services"]["web"]["health"]["path"] = "/nowhere"

    book = make_guestbook(edit=wrong_path)
    book.write(health_timeout=1.0)

    result = book.driver.up(book.spec.site("local-a"))

    assert not result.ok
    assert result.error and "did not pass within 1 s (last: HTTP 404, expected 200)" in result.error
    assert "started pid" in result.error  # the log's last lines come with it


def test_secret_values_reach_the_service_but_never_the_state_or_logs(make_guestbook: Make) -> None:
    token = "s3cr3t-token-value-42"

    def with_secret(data: dict[str, Any]) -> None:
        web = data["services"]["web"]
        web["secrets"] = ["GB_TOKEN"]
        web["local"]["command"] = [
            "python3",
            "-c",
            "import os, runpy, sys; print('token=' + os.environ['GB_TOKEN'], flush=True); "
            "sys.argv = ['app.py', '--host', '{host}', '--port', '{port}', '--data', '{data_dir}']; "
            "runpy.run_path('app.py', run_name='__main__')",
        ]

    book = make_guestbook(edit=with_secret, environ={"GB_TOKEN": token, "PATH": os.environ["PATH"]})
    result = book.driver.up(book.spec.site("local-a"))
    assert result.ok, result.error

    site_dir = book.site_dir("local-a")
    log = (site_dir / "logs" / "web.log").read_text()
    wait_for(lambda: "token=" in (site_dir / "logs" / "web.log").read_text(), timeout=3)
    log = (site_dir / "logs" / "web.log").read_text()
    assert "token=********" in log  # the service got it, printed it, and the log masked it
    for path in site_dir.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path
    status = book.driver.status(book.spec.site("local-a"))
    assert token not in json.dumps(status.to_dict())
    archived = book.driver.archive_state(book.spec.site("local-a"), book.root / "archive")
    assert "state.json" in archived["files"]
    for name in archived["files"]:
        assert token not in (book.root / "archive" / name).read_text()


def test_missing_secret_fails_up_with_a_hint_and_starts_nothing(make_guestbook: Make) -> None:
    def with_secret(data: dict[str, Any]) -> None:
        data["services"]["web"]["secrets"] = ["GB_MISSING_TOKEN"]

    book = make_guestbook(edit=with_secret, environ={"PATH": os.environ["PATH"]})

    result = book.driver.up(book.spec.site("local-a"))

    assert not result.ok and result.error_class == "fatal"
    assert result.error and "GB_MISSING_TOKEN" in result.error and "export GB_MISSING_TOKEN" in result.error
    assert sitestate.supervisor_pid(book.site_dir("local-a")) is None


def test_a_long_site_dir_gets_its_socket_in_the_temp_dir(make_guestbook: Make, tmp_path: Any) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    book = make_guestbook(root=deep)
    site = book.spec.site("local-a")

    result = book.driver.up(site)

    assert result.ok, result.error
    sock = sitestate.socket_path(book.site_dir("local-a"))
    assert not str(sock).startswith(str(deep)) and sock.exists()
    assert book.driver.destroy(site).ok
    assert not sock.exists()


def test_a_new_secret_value_restarts_the_service(make_guestbook: Make) -> None:
    def with_secret(data: dict[str, Any]) -> None:
        data["services"]["web"]["secrets"] = ["GB_TOKEN"]

    book = make_guestbook(edit=with_secret, environ={"GB_TOKEN": "first-value", "PATH": os.environ["PATH"]})
    assert book.driver.up(book.spec.site("local-a")).ok
    pid = service_pid(book, "local-a")
    assert book.driver.up(book.spec.site("local-a")).changes == {"same": 1}

    book.environ = {"GB_TOKEN": "second-value", "PATH": os.environ["PATH"]}
    book.write()
    result = book.driver.up(book.spec.site("local-a"))

    assert result.ok and result.changes == {"update": 1}
    assert service_pid(book, "local-a") != pid


def test_preview_says_what_up_would_change(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.preview(site).changes == {"create": 1}
    assert sitestate.supervisor_pid(book.site_dir("local-a")) is None  # preview starts nothing

    assert book.driver.up(site).ok
    assert book.driver.preview(site).changes == {"same": 1}

    book.data["services"]["web"]["env"]["GUESTBOOK_TITLE"] = "changed"
    book.write()
    assert book.driver.preview(book.spec.site("local-a")).changes == {"update": 1}


@pytest.mark.slow
def test_readme_first_command_brings_up_the_guestbook(make_guestbook: Make) -> None:
    book = make_guestbook(sites=3)
    command = [sys.executable, "-m", "deplat", "up", "-f", str(book.spec_path), "--yes", "--json"]

    done = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    for site in ("local-a", "local-b"):  # cold standbys are stood up on failover, or when named
        assert get(book.url(site, "/healthz")).json()["site"] == site
    assert done.stdout.count("http://") >= 2
    status = subprocess.run(
        [sys.executable, "-m", "deplat", "status", "-f", str(book.spec_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    sites = {s["site"]: s for s in json.loads(status.stdout)["sites"]}
    assert sites["local-a"]["running"] and sites["local-b"]["running"]
    assert not sites["local-c"]["exists"]


@pytest.mark.slow
def test_supervisor_stops_when_its_site_dir_is_removed(make_guestbook: Make) -> None:
    book = make_guestbook()
    assert book.driver.up(book.spec.site("local-a")).ok
    pids = book.pids()

    shutil.rmtree(book.root / ".deplat")

    wait_for(lambda: not any(sitestate.process_alive(pid, ident) for pid, ident in pids), timeout=8)
    assert not (book.root / ".deplat").exists()  # and it did not write its state back


def test_restart_on_request_reloads_the_data_without_using_the_crash_budget(make_guestbook: Make) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    assert book.driver.up(site).ok
    pid = service_pid(book, "local-a")
    entries = book.site_dir("local-a") / "data" / "web" / "entries.jsonl"
    entries.write_text('{"id": 1, "name": "r", "message": "restored", "at": 0}\n')  # as a restore would

    assert book.driver.restart(site, ["web"], timeout=15.0) == ["web"]

    assert service_pid(book, "local-a") != pid
    assert book.driver.status(site).detail["services"]["web"]["restarts"] == 0
    assert [e["message"] for e in get(book.url("local-a", "/entries")).json()] == ["restored"]
    assert book.driver.restart(site, ["nope"], timeout=2.0) == []


def test_everything_a_local_site_writes_under_deplat_is_owner_only(
    make_guestbook: Make, tmp_path: Path
) -> None:
    book = make_guestbook()
    site = book.spec.site("local-a")
    os.umask(0o022)  # the usual umask: files would be 0644 unless deplat says otherwise
    assert book.driver.up(site).ok
    book.driver.archive_state(site, book.root / ".deplat" / "archive" / "local-a-t1")
    deplat_dir = book.root / ".deplat"
    walked = [deplat_dir, *deplat_dir.rglob("*")]
    assert len(walked) > 5
    for path in walked:
        info = path.lstat()
        if stat.S_ISSOCK(info.st_mode) or stat.S_ISLNK(info.st_mode):
            continue
        assert stat.S_IMODE(info.st_mode) & 0o077 == 0, f"{path} is {stat.S_IMODE(info.st_mode):o}"


def test_the_supervisor_does_not_inherit_the_callers_credentials(
    make_guestbook: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLAT_PASSPHRASE", "passphrase-of-the-caller")
    book = make_guestbook()
    assert book.driver.up(book.spec.site("local-a")).ok

    supervisor = sitestate.supervisor_pid(book.site_dir("local-a"))
    service = service_pid(book, "local-a")
    for pid in (supervisor, service):
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"passphrase-of-the-caller" not in environ and b"PATH=" in environ


def test_a_port_taken_by_another_process_fails_up_before_starting_anything(make_guestbook: Make) -> None:
    import socket

    book = make_guestbook()
    address = book.data["sites"][0]["options"]["address"]
    port = book.data["services"]["web"]["ports"][0]["port"]
    with socket.socket() as squatter:
        squatter.bind((address, port))
        squatter.listen()

        result = book.driver.up(book.spec.site("local-a"))

    assert not result.ok and result.error_class == "fatal"
    assert result.error and f"{address}:{port} is not available" in result.error
    assert sitestate.supervisor_pid(book.site_dir("local-a")) is None


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)])
    return done.returncode == 0


@pytest.mark.slow
def test_a_full_disk_stops_logging_not_the_supervisor_or_its_app(make_guestbook: Make) -> None:
    """Issue 12.4: the services' logs live on a 64 KiB tmpfs that a chatty app fills at once."""

    def chatty(data: dict[str, Any]) -> None:
        data["services"]["web"]["local"]["command"] = [
            "python3",
            "-c",
            "import runpy, sys, threading, time\n"
            "def talk():\n"
            "    while True:\n"
            "        print('x' * 1000, flush=True); time.sleep(0.001)\n"
            "threading.Thread(target=talk, daemon=True).start()\n"
            "sys.argv = ['app.py', '--host', '{host}', '--port', '{port}', '--data', '{data_dir}']\n"
            "runpy.run_path('app.py', run_name='__main__')",
        ]

    book = make_guestbook(edit=chatty)
    site = book.spec.site("local-a")
    logs = book.site_dir("local-a") / "logs"
    if os.getuid() != 0 or not _mount_tmpfs(logs, "64k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        assert book.driver.up(site).ok
        pid = service_pid(book, "local-a")
        state = sitestate.read_state(book.site_dir("local-a")) or {}
        supervisor = state["supervisor"]

        web = wait_for(lambda: book.driver.status(site).detail["services"]["web"].get("logging"), timeout=15)

        assert "No space left on device" in web
        time.sleep(1.0)  # the app talks on; the supervisor drains and drops its output
        assert sitestate.process_alive(supervisor["pid"], supervisor["identity"])
        assert service_pid(book, "local-a") == pid
        assert get(book.url("local-a", "/healthz")).status_code == 200
        assert book.driver.status(site).running
    finally:
        book.driver.destroy(site)
        subprocess.run(["umount", "-l", str(logs)], check=False)
