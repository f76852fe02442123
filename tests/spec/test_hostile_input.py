"""Hostile or broken input (issue 12.11): every case is one located message and exit 2, at once.

Timing figures live in benchmarks/hostile_input.py; here the behaviour is asserted (the message,
the exit code, a bounded output) with timeouts generous enough for a loaded machine.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from deplat.cli import run
from deplat.errors import InputError, SpecError
from deplat.spec import load_spec, load_text
from deplat.spec.positions import MAX_DEPTH
from deplat.spec.source import MAX_SPEC_BYTES

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = (ROOT / "examples/guestbook/deplat.yaml").read_text()


def alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": 9 ** levels strings from a few hundred bytes."""
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def with_first_site_options(options_yaml: str) -> str:
    """The guestbook spec with its first site's options replaced by ``options_yaml`` (indented)."""
    block = "\n".join("      " + line for line in options_yaml.splitlines())
    return GUESTBOOK.replace("    options: {address: 127.0.0.11}", "    options:\n" + block, 1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_text(text, "deplat.yaml")
    return [str(p) for p in err.value.problems]


@pytest.mark.timeout(60)
def test_an_alias_bomb_under_options_is_refused_before_it_expands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 700
    spec = tmp_path / "deplat.yaml"
    spec.write_text(with_first_site_options(bomb + "address: *a8"))
    assert run(["--no-color", "-f", str(spec), "validate"]) == 2
    captured = capsys.readouterr()
    assert "more than 50000 values (counting what aliases repeat)" in captured.err
    assert len(captured.err) < 1000 and "Traceback" not in captured.err and captured.out == ""


def test_an_alias_that_contains_itself_is_refused_at_its_line() -> None:
    text = with_first_site_options("address: &loop [127.0.0.11, *loop]")
    [problem] = problems_of(text)
    assert problem.startswith("deplat.yaml:41:35:")
    assert "the alias *loop refers to a node that contains it" in problem


def test_too_many_aliases_are_refused_even_when_each_is_small() -> None:
    aliases = "\n".join(f"k{i}: *one" for i in range(1001))
    [problem] = problems_of(with_first_site_options("address: &one 127.0.0.11\n" + aliases))
    assert "more than 1000 aliases" in problem


def test_a_few_aliases_still_work_like_plain_yaml() -> None:
    text = GUESTBOOK.replace("    options: {address: 127.0.0.12}", "    options: &b {address: 127.0.0.12}")
    text = text.replace("    options: {address: 127.0.0.13}", "    options: {<<: *b, address: 127.0.0.13}")
    spec = load_text(text)
    assert [s.options["address"] for s in spec.sites] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def test_deep_nesting_is_refused_without_crashing_the_parser() -> None:
    deep = "[" * 200_000 + "]" * 200_000  # libyaml composes recursively in C: this used to segfault
    [problem] = problems_of(GUESTBOOK + f"extra: {deep}\n")
    assert f"nested more than {MAX_DEPTH} levels deep" in problem


def test_a_long_value_is_echoed_only_in_part(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "deplat.yaml"
    spec.write_text(with_first_site_options("address: " + "x" * 200_000))
    assert run(["--no-color", "-f", str(spec), "validate"]) == 2
    err = capsys.readouterr().err
    assert "sites[0].options.address: 'xxx" in err and "more characters)" in err
    assert len(err) < 1000


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "deplat.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_spec(fifo)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader before failing, so nothing is left hanging
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the spec waited on the FIFO")
    [error] = outcome
    assert isinstance(error, InputError)
    assert error.message == f"{fifo}: is a FIFO (named pipe), not a regular file"


@pytest.mark.timeout(30)
def test_a_device_is_refused_without_reading_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--no-color", "-f", "/dev/zero", "validate"]) == 2
    assert "/dev/zero: is a character device, not a regular file" in capsys.readouterr().err


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    spec = tmp_path / "deplat.yaml"
    spec.write_text(GUESTBOOK + "#" * MAX_SPEC_BYTES)
    with pytest.raises(InputError, match=f"bytes; the limit is {MAX_SPEC_BYTES}"):
        load_spec(spec)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_spec(tmp_path)


def with_local_sites(count: int, explicit: bool = True) -> str:
    """The guestbook with ``count`` local sites, each on its own address when ``explicit``."""
    role = ["primary"] + ["warm"] * (count - 1)
    sites = "\n".join(
        f"  - name: s{i}\n    provider: local\n    role: {role[i]}"
        + (f"\n    options: {{address: 127.1.{i // 200}.{i % 200 + 1}}}" if explicit else "")
        for i in range(count)
    )
    head = GUESTBOOK[: GUESTBOOK.index("sites:")]
    tail = GUESTBOOK[GUESTBOOK.index("failover:") :]
    return f"{head}sites:\n{sites}\n\n{tail}"


@pytest.mark.timeout(60)
def test_many_local_sites_validate_in_one_pass_and_a_clash_is_named_once() -> None:
    assert len(load_text(with_local_sites(600)).sites) == 600  # cubic before: minutes for 600 sites
    clash = with_local_sites(600).replace("{address: 127.1.2.200}", "{address: 127.1.0.1}")
    [problem] = problems_of(clash)
    assert "sites[599].options.address: address 127.1.0.1 is already used by site 's0'" in problem


def test_default_addresses_that_run_out_are_named() -> None:
    problems = problems_of(with_local_sites(250, explicit=False))
    assert len(problems) == 5  # 127.0.0.11 ... 127.0.0.255 are 245 sites
    assert "sites[245].name: no default loopback address is left for the local site 's245' " in problems[0]
    assert problems[0].endswith("(127.0.0.256): give it options.address")
