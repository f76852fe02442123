"""The SSH transport against a real sshd on loopback: commands, output as it comes, files, the
host key trusted on first use and then required, a refused key, and a deadline."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from deplat.transport import CommandTimeout, HostKeyMismatch, KeyRefused, TransportError
from deplat.transport.keys import AppKey, KnownHosts, generate
from deplat.transport.ssh import SshTransport, env_script
from tests.support.object_storage import free_port
from tests.support.sshd import SshServer, sshd


def connect(server: SshServer, key: AppKey, known: KnownHosts, **kw: object) -> SshTransport:
    return SshTransport(server.host, key, known, port=server.port, user=server.user, **kw)  # type: ignore[arg-type]


def test_env_values_travel_in_the_script_on_stdin_never_in_argv() -> None:
    script = env_script(["restic", "snapshots"], {"RESTIC_PASSWORD": "it's secret"}, "/srv/data dir")
    assert script == (
        "set -e\nexport RESTIC_PASSWORD='it'\"'\"'s secret'\ncd -- '/srv/data dir'\nexec restic snapshots\n"
    )
    with pytest.raises(ValueError, match="not an environment variable name"):
        env_script(["true"], {"A;rm -rf /": "x"}, None)


@pytest.mark.slow
def test_a_command_runs_with_its_env_and_cwd_and_streams_its_lines(
    server: SshServer, app_key: AppKey, known_hosts: KnownHosts, tmp_path: Path
) -> None:
    seen: list[str] = []
    with connect(server, app_key, known_hosts) as ssh:
        done = ssh.run(
            ["sh", "-c", 'pwd; echo "$TOKEN"; echo err >&2; exit 3'],
            env={"TOKEN": "s3cr3t value"},
            cwd=str(tmp_path),
            on_line=seen.append,
        )
        assert (done.returncode, done.stderr) == (3, "err\n")
        assert seen == [str(tmp_path), "s3cr3t value"]
        assert done.argv == ("sh", "-c", 'pwd; echo "$TOKEN"; echo err >&2; exit 3')
        again = ssh.run(["echo", "one connection"])
        assert again.stdout == "one connection\n"


@pytest.mark.slow
def test_put_writes_a_file_atomically_with_its_mode_then_a_restart_reads_it(
    server: SshServer, app_key: AppKey, known_hosts: KnownHosts, tmp_path: Path
) -> None:
    """A config push as `deplat up` does it on a running site: write the env file, restart."""
    site = tmp_path / "site"
    env_file = site / "env" / "web.env"
    restart = site / "restart.sh"
    site.mkdir()
    restart.write_text('#!/bin/sh\nset -e\n. "$1"\necho "restarted with $GUESTBOOK_TITLE" >> "$2"\n')
    restart.chmod(0o755)
    with connect(server, app_key, known_hosts) as ssh:
        ssh.put(b"GUESTBOOK_TITLE=new-title\n", str(env_file))
        ssh.check([str(restart), str(env_file), str(site / "web.log")])
        logs = ssh.run(["tail", "-n", "5", str(site / "web.log")])
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert [p.name for p in env_file.parent.iterdir()] == ["web.env"]
    assert logs.stdout == "restarted with new-title\n"


@pytest.mark.slow
def test_the_host_key_is_recorded_on_first_use_and_a_different_one_is_refused(
    app_key: AppKey, known_hosts: KnownHosts, tmp_path: Path
) -> None:
    port = free_port()
    with (
        sshd(tmp_path / "first", [app_key.public_line], port=port) as first,
        connect(first, app_key, known_hosts) as ssh,
    ):
        assert ssh.run(["true"]).ok
    recorded = known_hosts.path.read_text()
    assert recorded == f"[127.0.0.1]:{port} {first.host_key_pub}\n"
    assert stat.S_IMODE(known_hosts.path.stat().st_mode) == 0o600

    with (
        sshd(tmp_path / "second", [app_key.public_line], port=port) as second,  # a new host key
        pytest.raises(HostKeyMismatch) as err,
        connect(second, app_key, known_hosts) as ssh,
    ):
        ssh.run(["true"])
    assert "presented a different SSH host key" in err.value.message
    assert str(known_hosts.path) in (err.value.hint or "")
    assert known_hosts.path.read_text() == recorded


@pytest.mark.slow
def test_a_pinned_host_key_is_required_from_the_first_connection(
    server: SshServer, app_key: AppKey, known_hosts: KnownHosts
) -> None:
    other = generate("x").private.export_public_key().decode()
    with (
        pytest.raises(HostKeyMismatch, match="pinned"),
        connect(server, app_key, known_hosts, host_key=other) as ssh,
    ):
        ssh.run(["true"])
    with connect(server, app_key, known_hosts, host_key=server.host_key_pub) as ssh:
        assert ssh.run(["true"]).ok


@pytest.mark.slow
def test_a_wrong_key_is_refused_with_one_clear_message(server: SshServer, known_hosts: KnownHosts) -> None:
    stranger = generate("stranger")
    with pytest.raises(KeyRefused) as err, connect(server, stranger, known_hosts) as ssh:
        ssh.run(["true"])
    assert (
        err.value.message
        == f"{server.user}@[127.0.0.1]:{server.port} refused the app's SSH key (deplat-stranger)"
    )
    assert "authorized_keys" in (err.value.hint or "") and err.value.exit_code == 2


def test_an_unreachable_site_is_a_transient_failure(app_key: AppKey, known_hosts: KnownHosts) -> None:
    ssh = SshTransport("127.0.0.1", app_key, known_hosts, port=free_port(), connect_timeout=2)
    with pytest.raises(TransportError, match="cannot reach root@") as err, ssh:
        ssh.run(["true"])
    assert err.value.error_class == "transient"


@pytest.mark.slow
def test_a_command_past_its_deadline_is_stopped(
    server: SshServer, app_key: AppKey, known_hosts: KnownHosts
) -> None:
    with connect(server, app_key, known_hosts) as ssh:
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match=r"did not finish within 0\.5s"):
            ssh.run(["sleep", "30"], timeout=0.5)
        assert time.monotonic() - started < 5
        assert ssh.run(["echo", "still usable"]).stdout == "still usable\n"


@pytest.mark.slow
def test_commands_from_several_threads_share_one_connection_and_run_side_by_side(
    server: SshServer, app_key: AppKey, known_hosts: KnownHosts, tmp_path: Path
) -> None:
    """As a backup to several repositories does: each thread's command runs while the others do,
    over the one connection opened by whichever asked first."""
    from concurrent.futures import ThreadPoolExecutor

    gate = tmp_path / "gate"
    gate.mkdir()
    # each command waits until all four have started: they can only finish side by side
    script = 'touch "$1/$2"; n=0; while [ "$(ls "$1" | wc -l)" -lt 4 ]; do sleep 0.05; n=$((n+1)); [ $n -lt 200 ] || exit 9; done; echo "$2"'
    with connect(server, app_key, known_hosts) as ssh, ThreadPoolExecutor(4) as pool:
        done = list(
            pool.map(lambda i: ssh.run(["sh", "-c", script, "sh", str(gate), str(i)], timeout=30), range(4))
        )
    assert [d.stdout for d in done] == ["0\n", "1\n", "2\n", "3\n"]
    assert (server.dir / "sshd.log").read_text().count("Accepted publickey") == 1
