"""What a local site runs, its state helpers and the log masking: no processes except where named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deplat.errors import InputError
from deplat.local import sitestate
from deplat.local.runs import fill, site_outputs, site_runs
from deplat.local.supervisor import LogSink, comparison_key, config_hash
from deplat.providers import local as local_provider
from deplat.secrets import SecretStore
from deplat.spec.loader import load_text
from deplat.spec.model import Spec

SPEC = """
version: 1
app: shop
services:
  web:
    image: shop:1
    ports: [{port: 8000, public: true}]
    env: {MODE: prod, WHERE: "{host}:{port}", SHARED: from-service}
    secrets: [API_TOKEN]
    local:
      command: [python3, serve.py, --bind, "{host}:{port}", --data, "{data_dir}", --name, "{site}", "{x}"]
      env: {SHARED: from-local}
      cwd: app
domain: {zone: shop.test, names: [shop.test]}
sites:
  - {name: here, provider: local, role: primary, options: {address: "%s"}}
  - {name: there, provider: local, role: warm}
"""


def make_spec(tmp_path: Path, address: str = "127.0.0.77") -> Spec:
    (tmp_path / "app").mkdir(exist_ok=True)
    spec = load_text(SPEC % address, "deplat.yaml")
    spec._source = tmp_path / "deplat.yaml"
    return spec


def runs_for(spec: Spec, environ: dict[str, str]) -> dict[str, Any]:
    return site_runs(spec, spec.site("here"), SecretStore(spec, environ=environ), environ)


def test_placeholders_are_filled_in_the_command_and_env(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    run = runs_for(spec, {"API_TOKEN": "tok-123456"})["web"]

    data_dir = str((tmp_path / ".deplat" / "local" / "here" / "data" / "web").resolve())
    assert run["argv"] == [
        "python3",
        "serve.py",
        "--bind",
        "127.0.0.77:8000",
        "--data",
        data_dir,
        "--name",
        "here",
        "{x}",  # not a placeholder: left as it is
    ]
    assert run["env"]["WHERE"] == "127.0.0.77:8000"
    assert run["cwd"] == str((tmp_path / "app").resolve())
    assert run["data_dir"] == data_dir
    assert run["log"].endswith("/.deplat/local/here/logs/web.log")


def test_environment_layers_and_nothing_else_from_the_caller(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    caller = {"API_TOKEN": "tok-123456", "PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "not-for-the-app"}

    run = runs_for(spec, caller)["web"]

    assert run["env"] == {
        "MODE": "prod",
        "WHERE": "127.0.0.77:8000",
        "SHARED": "from-local",
        "API_TOKEN": "tok-123456",
        "DEPLAT_SITE": "here",
    }
    assert run["base_env"] == {"PATH": "/usr/bin"}
    assert run["secret_keys"] == ["API_TOKEN"]


def test_a_missing_secret_is_an_input_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        runs_for(make_spec(tmp_path), {})
    assert "API_TOKEN" in caught.value.message and "export API_TOKEN" in (caught.value.hint or "")


def test_a_missing_working_directory_is_an_input_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    (tmp_path / "app").rmdir()
    with pytest.raises(InputError, match=r"services\.web\.local\.cwd"):
        runs_for(spec, {"API_TOKEN": "tok-123456"})


def test_config_hash_leaves_secret_values_out_but_the_comparison_does_not(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    one = runs_for(spec, {"API_TOKEN": "tok-111111", "PATH": "/a"})["web"]
    two = runs_for(spec, {"API_TOKEN": "tok-222222", "PATH": "/b"})["web"]

    assert config_hash(one) == config_hash(two)
    assert comparison_key(one) != comparison_key(two)  # so a new secret value restarts the service
    other_path = dict(one, base_env={"PATH": "/elsewhere"})
    assert comparison_key(other_path) == comparison_key(one)  # another shell restarts nothing
    changed = dict(one, argv=[*one["argv"], "--verbose"])
    assert config_hash(changed) != config_hash(one)


def test_outputs_name_the_address_and_url(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    assert site_outputs(spec, spec.site("here")) == {
        "ipv4": "127.0.0.77",
        "ports": {"web": 8000},
        "url": "http://127.0.0.77:8000/",
    }
    v6 = make_spec(tmp_path, "::1")
    assert site_outputs(v6, v6.site("here"))["url"] == "http://[::1]:8000/"
    assert site_outputs(v6, v6.site("here"))["ipv6"] == "::1"


def test_fill_replaces_only_known_placeholders() -> None:
    assert fill("{a}-{b}-{{a}}", {"a": "1"}) == "1-{b}-{1}"


def test_log_sink_masks_secrets_even_when_a_line_arrives_in_pieces(tmp_path: Path) -> None:
    from deplat.secrets import Masker

    sink = LogSink(tmp_path / "logs" / "web.log", Masker(["hunter2-secret"]))
    sink.feed(b"token=hunter2-")
    sink.feed(b"secret and more\nsecond line without end")
    sink.note("deplat says hello")
    sink.close()

    text = (tmp_path / "logs" / "web.log").read_text()
    assert "hunter2" not in text
    assert "token=******** and more\n" in text
    assert "second line without end" in text
    assert re.search(r"\[deplat [0-9T:-]+\] deplat says hello", text)


def test_socket_path_falls_back_to_the_temp_dir_for_long_site_dirs(tmp_path: Path) -> None:
    short = sitestate.socket_path(tmp_path / "s")
    assert short == (tmp_path / "s").resolve() / "supervisor.sock"
    deep = tmp_path / ("x" * 80) / "site"
    long = sitestate.socket_path(deep)
    assert len(os.fsencode(long)) <= sitestate.MAX_SOCKET_PATH
    assert long == sitestate.socket_path(deep) and long != sitestate.socket_path(
        tmp_path / ("x" * 80) / "other"
    )


def test_process_alive_knows_a_dead_pid_and_a_reused_one() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = sitestate.process_identity(proc.pid)
        assert identity is not None
        assert sitestate.process_alive(proc.pid, identity)
        assert not sitestate.process_alive(proc.pid, "1")  # same pid, another process
    finally:
        proc.kill()
        proc.wait()
    assert not sitestate.process_alive(proc.pid, identity)
    assert not sitestate.process_alive(None)


def test_state_and_pid_file_readers_tolerate_absence_and_garbage(tmp_path: Path) -> None:
    assert sitestate.read_state(tmp_path) is None
    assert sitestate.supervisor_pid(tmp_path) is None
    (tmp_path / "state.json").write_text("{not json")
    assert sitestate.read_state(tmp_path) == {"services": {}, "unreadable": True}
    (tmp_path / "supervisor.pid").write_text("12345")  # written, but nobody holds the lock
    assert sitestate.supervisor_pid(tmp_path) is None


def test_local_provider_classifies_errors_like_the_cloud_providers() -> None:
    assert local_provider.classify_error("HTTP 403: AccountSuspended") == "suspended"
    assert local_provider.classify_error("credentials refused (AccessDenied)") == "forbidden"
    assert local_provider.classify_error("supervisor at /x: Connection refused") == "transient"
    assert local_provider.classify_error("health check timed out") == "transient"
    assert local_provider.classify_error("service web: keeps exiting (last exit code 3)") == "fatal"


def test_local_provider_needs_no_credentials_and_has_a_suspension_signature(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    assert local_provider.check_credentials(spec.site("here"), SecretStore(spec, environ={})) == (
        True,
        "no credentials needed",
    )
    (status, pattern), *_ = local_provider.SUSPENSION_SIGNATURES
    assert status == 403 and re.search(pattern, '{"error": "AccountSuspended"}')
