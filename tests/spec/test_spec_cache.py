"""The validated-spec cache (``deplat.spec.cache``): a spec read again skips parsing and validation,
yet is the same spec, is re-validated whenever its bytes (or deplat's code) change, holds no secret
value, is owner-only, and is written only in a project deplat has worked in."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
import yaml

from deplat.errors import SpecError
from deplat.spec import cache, cache_entry, load_spec, load_text
from deplat.spec.model import Spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/**/deplat.yaml"))


def project(tmp_path: Path, data: dict | None = None, *, worked_in: bool = True) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    if worked_in:
        (folder / ".deplat").mkdir(mode=0o700)
    spec = folder / "deplat.yaml"
    if data is None:
        data = yaml.safe_load((ROOT / "examples/guestbook/deplat.yaml").read_text())
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(text: str) -> None:
        raise AssertionError("the YAML was parsed again")

    monkeypatch.setattr("deplat.spec.positions.parse", parse)


def test_a_spec_read_again_is_the_same_spec_without_parsing_or_validating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project(tmp_path)
    first = load_spec(path)
    entry = cache_entry.cache_file(path)
    no_parsing(monkeypatch)

    again = load_spec(path)

    assert cache.same(again, first) and again.source == path.resolve()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_is_rebuilt_exactly_value_and_type(path: Path) -> None:
    import json

    spec = load_text(path.read_text(), str(path))
    rebuilt = cache.rebuild(Spec, json.loads(json.dumps(spec.model_dump(mode="json"))))

    assert cache.same(rebuilt, spec)
    assert rebuilt.sites[0].role is spec.sites[0].role and type(rebuilt.failover.timeout) is float
    assert not cache.same(rebuilt.model_copy(update={"app": "other"}), spec)


def test_a_changed_spec_is_validated_again_with_its_line(tmp_path: Path) -> None:
    path = project(tmp_path)
    load_spec(path)
    path.write_text(path.read_text().replace("role: primary", "role: primray"))

    with pytest.raises(SpecError) as caught:
        load_spec(path)

    [problem] = caught.value.problems
    assert problem.line > 1 and "primray" in problem.message


def test_changed_validation_code_is_a_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path)
    raw = path.read_bytes()
    before = cache_entry.key(raw)
    monkeypatch.setattr(cache_entry, "_code_fingerprint", lambda: "another deplat")

    assert cache_entry.key(raw) != before
    assert cache.load(path, raw) is None


def test_nothing_is_written_where_deplat_has_not_worked(tmp_path: Path) -> None:
    path = project(tmp_path, worked_in=False)
    load_spec(path)
    assert not (path.parent / ".deplat").exists()


def test_the_cache_holds_secret_names_never_their_values(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "examples/guestbook/deplat.yaml").read_text())
    data["secrets_file"] = "secrets.env"
    path = project(tmp_path, data)
    (path.parent / "secrets.env").write_text("DEPLAT_BACKUP_PASSWORD=s3cret-value-123\n")
    os.environ.setdefault("DNS_TSIG_SECRET", "another-s3cret-456")

    load_spec(path)

    held = cache_entry.cache_file(path).read_text()
    assert "secrets.env" in held and "DEPLAT_BACKUP_PASSWORD" in held
    assert "s3cret-value-123" not in held and "another-s3cret-456" not in held


def test_a_value_json_cannot_carry_is_not_cached(tmp_path: Path) -> None:
    path = project(tmp_path)
    spec = load_text(path.read_text(), str(path))
    site = spec.sites[0].model_copy(update={"options": {"since": datetime.date(2024, 5, 1)}})

    cache.save(path, path.read_bytes(), spec.model_copy(update={"sites": [site, *spec.sites[1:]]}))

    assert not cache_entry.cache_file(path).exists()


@pytest.mark.parametrize("damage", ["garbage", "group-writable", "other key"])
def test_a_damaged_or_foreign_entry_is_a_miss(tmp_path: Path, damage: str) -> None:
    path = project(tmp_path)
    load_spec(path)
    entry = cache_entry.cache_file(path)
    if damage == "garbage":
        entry.write_text("{not json")
    elif damage == "group-writable":
        entry.chmod(0o660)
    else:
        entry.write_text(entry.read_text().replace('"key": "', '"key": "0'))
    raw = path.read_bytes()

    assert cache.load(path, raw) is None
    assert load_spec(path).app == "guestbook"  # read as always (and cached afresh)
