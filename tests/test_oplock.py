"""Operation locks: a second holder is refused at once, naming the first; shared holders coexist."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from deplat import oplock
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
version: 1
app: shop
services:
  db:
    image: postgres
    ports: [{port: 5432, public: true}]
    volumes: [{name: data, path: /data}]
    local: {command: [sleep, "60"]}
  web: {image: web, ports: [{port: 8080}], local: {command: [sleep, "60"]}}
domain: {zone: shop.test, names: [shop.test]}
sites:
  - {name: a, provider: local, role: primary, options: {address: 127.0.0.21}}
  - {name: b, provider: local, role: warm, options: {address: 127.0.0.22}}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    (tmp_path / "deplat.yaml").write_text(
        SPEC,
        encoding="utf-8",
    )
    return load_spec(tmp_path / "deplat.yaml")


def hold_in_child(spec: Spec, name: str, command: str, shared: bool = False) -> subprocess.Popen[str]:
    code = (
        "import sys, time; from deplat import oplock; from deplat.spec.loader import load_spec\n"
        f"with oplock.hold(load_spec({str(spec.source)!r}), {name!r}, {command!r}, shared={shared}):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


@pytest.mark.slow
def test_a_second_holder_is_refused_at_once_naming_the_first(spec: Spec) -> None:
    child = hold_in_child(spec, "drill", "deplat drill --mode refused")
    try:
        start = time.monotonic()
        with pytest.raises(oplock.Busy) as info, oplock.hold(spec, "drill", "deplat drill"):
            pass
        assert time.monotonic() - start < 1
        assert f"deplat drill --mode refused (pid {child.pid}" in info.value.message
        assert oplock.taken(spec, "drill") == info.value.holders
    finally:
        child.kill()
        child.wait()
    assert oplock.taken(spec, "drill") is None  # the kernel released it with the dead holder
    with oplock.hold(spec, "drill", "deplat drill"):
        pass


@pytest.mark.slow
def test_shared_holders_coexist_and_keep_an_exclusive_one_out(spec: Spec) -> None:
    first = hold_in_child(spec, "watch", "deplat watch", shared=True)
    try:
        with (
            oplock.hold(spec, "watch", "deplat watch", shared=True),
            pytest.raises(oplock.Busy, match="deplat watch"),
            oplock.hold(spec, "watch", "deplat drill"),
        ):
            pass
    finally:
        first.kill()
        first.wait()


def test_a_lock_is_exclusive_between_two_holders_even_in_one_process(spec: Spec) -> None:
    with oplock.hold(spec, "drill", "deplat drill"):
        with pytest.raises(oplock.Busy, match="already runs for this spec"), oplock.hold(spec, "drill", "x"):
            pass
        assert oplock.taken(spec, "drill") == []  # held, by this very process
    assert oplock.taken(spec, "drill") is None
    assert not list((spec.base_dir / ".deplat" / "locks" / "drill.holders").iterdir())  # no holder left
