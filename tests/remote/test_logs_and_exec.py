"""``deplat logs`` and ``deplat exec`` on a cloud site, through the CLI, over a real sshd.

The site's address comes from its outputs through a FAKE cloud driver (Pulumi and the account are
the boundary); journalctl and docker on the VM are FAKES (tests/support/fake_vm_tools.py) whose
output and exit codes cross the real SSH connection.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deplat.cli import run
from deplat.remote import app_key
from deplat.secrets import SecretStore
from deplat.site_results import SiteStatus
from deplat.spec.loader import load_spec
from tests.remote.conftest import PASSPHRASE
from tests.support.fake_vm_tools import FakeVm, fake_vm
from tests.support.sshd import SshServer

SECRET = "Shown-Nowhere-Secret-42"

SPEC = """\
app: shop
services:
  web:
    image: ghcr.io/example/web:1
    ports: [{port: 8080, public: true}]
    secrets: [SHOP_TOKEN]
    local: {command: [python3, -m, http.server, "{port}"]}
  worker:
    image: ghcr.io/example/worker:1
    ports: [{port: 9000}]
    local: {command: [python3, -m, http.server, "{port}"]}
domain: {zone: shop.example.org, names: [shop.example.org]}
sites:
  - {name: aws-a, provider: aws, role: primary, region: eu-central-1, options: {ssh_cidrs: [127.0.0.1/32]}}
  - {name: local-b, provider: local, role: warm}
"""


class FakeCloudDriver:  # FAKE: Pulumi's view of the site (its outputs: where SSH answers)
    def __init__(self, server: SshServer) -> None:
        self.server = server

    def status(self, site: Any) -> SiteStatus:
        outputs = {"ipv4": self.server.host, "ssh_port": self.server.port}
        return SiteStatus(site.name, "aws", "primary", True, True, outputs=outputs)


@pytest.fixture
def cli(
    tmp_path: Path, server_for: Callable[[str], SshServer], monkeypatch: pytest.MonkeyPatch
) -> tuple[Callable[..., int], FakeVm]:
    import deplat.remote
    import deplat.sites

    spec_file = tmp_path / "app" / "deplat.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text(SPEC)
    spec = load_spec(spec_file)
    monkeypatch.setenv("DEPLAT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    server = server_for(app_key(spec, SecretStore(spec)).public_line)
    vm = fake_vm(tmp_path / "vm")
    monkeypatch.setattr(deplat.sites, "driver_for", lambda *a: FakeCloudDriver(server))
    monkeypatch.setattr(
        deplat.remote, "open_site", functools.partial(deplat.remote.open_site, layout=vm.layout)
    )

    def deplat(*args: str) -> int:
        return run(["--file", str(spec_file), *args])

    return deplat, vm


@pytest.mark.slow
def test_logs_of_a_cloud_service_come_from_its_journal(
    cli: tuple[Callable[..., int], FakeVm], capsys: pytest.CaptureFixture[str]
) -> None:
    deplat, vm = cli
    assert deplat("logs", "aws-a", "web", "-n", "5") == 0
    out = capsys.readouterr().out
    assert "canned line 1 of deplat-web.service" in out and "canned line 2" in out
    assert vm.calls("journalctl") == [
        ["journalctl", "--no-pager", "-o", "short-iso", "-n", "5", "-u", "deplat-web.service"]
    ]
    assert deplat("--json", "logs", "aws-a") == 0  # every service
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["site"] for line in lines} == {"aws-a"} and len(lines) == 4
    assert vm.calls("journalctl")[-1][-4:] == ["-u", "deplat-web.service", "-u", "deplat-worker.service"]


@pytest.mark.slow
def test_logs_follow_streams_until_ctrl_c(
    cli: tuple[Callable[..., int], FakeVm],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C is a real SIGINT to this process once three followed lines have arrived."""
    from deplat.remote import shell

    deplat, _ = cli
    followed: list[str] = []
    original = shell._masked

    def counting(spec: Any, secrets: Any, on_line: Callable[[str], None]) -> Callable[[str], None]:
        inner = original(spec, secrets, on_line)

        def seen(line: str) -> None:
            inner(line)
            if "followed line" in line:
                followed.append(line)
                if len(followed) == 3:
                    os.kill(os.getpid(), signal.SIGINT)

        return seen

    monkeypatch.setattr(shell, "_masked", counting)
    # a terminal's Ctrl-C, as a fresh process has it (a run in the background starts with SIGINT
    # ignored: the handler it had is given back)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert deplat("logs", "aws-a", "worker", "-f") == 0
    finally:
        signal.signal(signal.SIGINT, previous)
    out = capsys.readouterr().out
    assert "canned line 2 of deplat-worker.service" in out and "followed line 5" in out


@pytest.mark.slow
def test_exec_runs_in_the_container_and_its_exit_code_becomes_deplats(
    cli: tuple[Callable[..., int], FakeVm], capsys: pytest.CaptureFixture[str]
) -> None:
    deplat, vm = cli
    assert deplat("exec", "aws-a", "web", "--", "sh", "-c", "echo out-line; echo err-line >&2; exit 3") == 3
    captured = capsys.readouterr()
    assert "out-line" in captured.out and "err-line" in captured.err
    assert vm.calls("docker")[-1][:3] == ["docker", "exec", "deplat-web"]
    assert deplat("--json", "exec", "aws-a", "web", "--", "echo", "--json", SECRET) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["exit"] == 0 and shown["stdout"] == ["--json ********"]  # masked


def test_exec_on_a_local_site_is_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file = tmp_path / "deplat.yaml"
    spec_file.write_text(SPEC)
    assert run(["--file", str(spec_file), "exec", "local-b", "web", "--", "ls"]) == 2
    assert "local-b is a local site" in capsys.readouterr().err
    assert run(["--file", str(spec_file), "exec", "nowhere", "web", "--", "ls"]) == 2
    assert "no site named 'nowhere'" in capsys.readouterr().err
