"""Paths in the spec stay in the project (issue 12.3): relative ones inside the spec's folder,
absolute ones only where a field allows them, never into the system's folders; `deplat show` lists
where each one points."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.errors import InputError, SpecError
from deplat.secrets import SecretStore
from deplat.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = (ROOT / "examples/guestbook/deplat.yaml").read_text()


def spec_file(folder: Path, extra: str = "", cwd: str = ".") -> Path:
    path = folder / "deplat.yaml"
    path.write_text(GUESTBOOK.replace("      cwd: .", f"      cwd: {cwd}") + extra)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(path)
    return [f"{p.path}: {p.message}" for p in err.value.problems]


@pytest.mark.parametrize(
    ("extra", "cwd", "expected"),
    [
        (
            "  store: ../../../../etc/x\n",
            ".",
            "backups.store: '../../../../etc/x' leads outside the spec's folder; keep it inside "
            "(or an absolute path, which `deplat show` lists)",
        ),
        (
            "  store: /etc/deplat-backups\n",
            ".",
            "backups.store: '/etc/deplat-backups' is a system folder and deplat writes here; "
            "choose a folder of your own",
        ),
        (
            "secrets_file: /proc/self/environ\n",
            ".",
            "secrets_file: '/proc/self/environ' is under /proc, which holds the kernel's pseudo files, not yours",
        ),
        (
            "secrets_file: secrets/../../outside.env\n",
            ".",
            "secrets_file: 'secrets/../../outside.env' leads outside the spec's folder; keep it inside "
            "(or an absolute path, which `deplat show` lists)",
        ),
        (
            "",
            "../../..",
            "services.web.local.cwd: '../../..' leads outside the spec's folder; keep it inside "
            "(or an absolute path, which `deplat show` lists)",
        ),
        (
            "",
            "/proc/1/cwd",
            "services.web.local.cwd: '/proc/1/cwd' is under /proc, which holds the kernel's pseudo files, not yours",
        ),
        (
            "state:\n  backend: /\n",
            ".",
            "state.backend: '/' is a system folder and deplat writes here; choose a folder of your own",
        ),
    ],
    ids=[
        "store-escapes",
        "store-in-etc",
        "secrets-in-proc",
        "secrets-escapes",
        "cwd-escapes",
        "cwd-in-proc",
        "state-root",
    ],
)
def test_a_path_leaving_the_project_is_one_located_error(
    tmp_path: Path, extra: str, cwd: str, expected: str
) -> None:
    assert problems(spec_file(tmp_path, extra, cwd)) == [expected]


def test_the_cli_says_where_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = spec_file(tmp_path, "  store: ../../../../etc/x\n")
    assert run(["--json", "-f", str(spec), "validate"]) == 2
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert (problem["line"], problem["column"], problem["path"]) == (
        len(GUESTBOOK.splitlines()) + 1,  # the appended line
        10,
        "backups.store",
    )


def test_allowed_absolute_paths_are_listed_by_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "backup-disk"
    project.mkdir()
    spec = spec_file(project, f"  store: {elsewhere}\nsecrets_file: secrets.env\n")
    assert run(["--json", "-f", str(spec), "show"]) == 0
    paths = json.loads(capsys.readouterr().out)["paths"]
    assert paths == {
        "services.web.local.cwd": str(project),
        "secrets_file": str(project / "secrets.env"),
        "state.backend": str(project / ".deplat/state"),
        "backups.store": f"{elsewhere} (outside the spec's folder)",
    }


@pytest.mark.timeout(30)  # reading a FIFO used to wait for a writer forever
def test_a_secrets_file_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, "secrets_file: secrets.env\n"))
    os.mkfifo(tmp_path / "secrets.env")
    with pytest.raises(InputError, match=r"secrets.env: is a FIFO \(named pipe\), not a regular file"):
        SecretStore(spec)


def test_a_nul_in_a_path_is_a_located_error(tmp_path: Path) -> None:
    assert problems(spec_file(tmp_path, 'secrets_file: "a\\0b"\n')) == [
        "secrets_file: contains a NUL character"
    ]


@pytest.mark.timeout(30)  # reading a FIFO used to wait for a writer forever
def test_a_passphrase_file_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    from deplat.engine import passphrase

    spec = load_spec(spec_file(tmp_path, "state:\n  passphrase: {file: pass.txt}\n"))
    os.mkfifo(tmp_path / "pass.txt")
    passphrase.forget()
    with pytest.raises(InputError, match=r"pass.txt: is a FIFO \(named pipe\), not a regular file"):
        passphrase.resolve(spec, SecretStore(spec, environ={}))
