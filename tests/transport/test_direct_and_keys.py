"""Direct execution for local sites, and the app's SSH key kept only encrypted."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from deplat.errors import InputError
from deplat.transport import CommandTimeout, DirectTransport, TransportError
from deplat.transport.keys import load_or_create


def test_direct_runs_in_the_site_folder_with_env_and_streams_lines(tmp_path: Path) -> None:
    site = DirectTransport(tmp_path, name="local-a")
    seen: list[str] = []
    done = site.run(
        ["sh", "-c", 'pwd; echo "$X"; echo oops >&2; exit 4'], env={"X": "y"}, on_line=seen.append
    )
    assert (done.returncode, done.stdout, done.stderr) == (4, f"{tmp_path}\ny\n", "oops\n")
    assert seen == [str(tmp_path), "y"]
    assert site.run(["cat"], stdin=b"in").stdout == "in"


def test_direct_stops_a_command_past_its_deadline_and_what_it_started(tmp_path: Path) -> None:
    site = DirectTransport(tmp_path, name="local-a")
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"local site local-a: sh did not finish within 0\.3s"):
        site.run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.3)
    assert time.monotonic() - started < 5


def test_direct_names_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="cannot run no-such-tool") as err:
        DirectTransport(tmp_path).run(["no-such-tool"])
    assert err.value.error_class == "input"


def test_direct_put_is_owner_only(tmp_path: Path) -> None:
    DirectTransport(tmp_path).put(b"A=1\n", "env/web.env")
    assert stat.S_IMODE((tmp_path / "env" / "web.env").stat().st_mode) == 0o600


def test_the_app_key_is_made_once_and_kept_only_encrypted(tmp_path: Path) -> None:
    private, public = tmp_path / "ssh" / "app_key.enc.pem", tmp_path / "ssh" / "app_key.pub"
    key = load_or_create("shop", private, public, "state pass")
    text = private.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ssh").stat().st_mode) == 0o700
    assert public.read_text() == key.public_line + "\n"
    assert key.public_line.startswith("ssh-ed25519 ") and key.public_line.endswith(" deplat-shop")
    again = load_or_create("shop", private, public, "state pass")
    assert again.public_line == key.public_line and private.read_text() == text
    with pytest.raises(InputError, match="cannot decrypt the app's SSH key") as err:
        load_or_create("shop", private, public, "another pass")
    assert "DEPLAT_SSH_KEY" in (err.value.hint or "")
