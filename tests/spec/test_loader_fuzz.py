"""Property-based fuzzing of the loader: whatever the input, a Spec or located problems, and the
CLI exits 0 or 2 with a message, never a traceback."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deplat.cli import run
from deplat.errors import SpecError
from deplat.spec import load_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VALID = yaml.safe_load((ROOT / "examples/guestbook/deplat.yaml").read_text())
KEYS = [
    "version", "app", "services", "web", "image", "ports", "port", "public", "health", "path",
    "expect", "timeout", "local", "command", "domain", "zone", "names", "ttl", "sites", "name",
    "provider", "role", "options", "address", "dns", "failover", "state", "backend", "volumes",
    "size", "secrets", "env", "credentials", "backups", "interval",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["local", "aws", "primary", "warm", "127.0.0.1", "{port}", "1e9", "~", "-"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
structures = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=25,
)


def _check(text: str) -> None:
    try:
        spec = load_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.problems, "a SpecError always carries at least one problem"
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message
    else:
        assert spec.app


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _leaf_paths(node: Any, prefix: list[Any]) -> list[list[Any]]:
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return [prefix]
    out = [prefix] if prefix else []
    for k, v in items:
        out += _leaf_paths(v, [*prefix, k])
    return out


PATHS = _leaf_paths(VALID, [])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=300))
def test_random_text_never_raises_anything_but_spec_error(text: str) -> None:
    _check(text)


@FAST
@given(structures)
def test_random_structures_never_raise_anything_but_spec_error(data: Any) -> None:
    _check(yaml.safe_dump(data, allow_unicode=True))


@FAST
@given(st.sampled_from(PATHS), structures)
def test_a_valid_spec_with_one_value_replaced_is_valid_or_located(path: list[Any], value: Any) -> None:
    _check(yaml.safe_dump(_mutate(VALID, path, value), allow_unicode=True))


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=200), structures.map(yaml.safe_dump)))
def test_cli_validate_exits_0_or_2_and_never_shows_a_traceback(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "deplat.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["--no-color", "-f", str(path), "validate"])
    assert code in (0, 2)
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    assert (out.getvalue() if code == 0 else err.getvalue()).strip()
