"""The Automation API layer against the fake `pulumi` CLI: what deplat really asks the engine to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deplat import operations
from deplat.engine.driver import PulumiDriver
from deplat.events import Recorder
from deplat.secrets import SecretStore
from deplat.spec.model import Spec
from deplat.state import record_failover
from tests.engine.conftest import HCLOUD_TOKEN, PASSPHRASE, FakePulumi

pytestmark = pytest.mark.slow

SECRETS = (PASSPHRASE, HCLOUD_TOKEN)


def up(spec: Spec, fake: FakePulumi, names: list[str] | None = None) -> tuple[list, Recorder]:
    rec = Recorder()
    results = operations.up_sites(spec, names, SecretStore(spec), rec)
    return results, rec


def test_each_site_gets_its_own_stack_in_the_embedded_file_backend(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    results, _ = up(cloud_spec, fake_pulumi)
    assert [(r.site, r.ok) for r in results] == [("aws-a", True), ("hc-b", True)]
    inits = fake_pulumi.commands("stack", "init")
    assert sorted(c["argv"][c["argv"].index("init") + 1] for c in inits) == ["aws-a", "hc-b"]
    for call in inits:
        assert call["argv"][call["argv"].index("--secrets-provider") + 1] == "passphrase"
    state = cloud_spec.base_dir / ".deplat" / "state"
    for call in fake_pulumi.calls():
        if call["argv"][-1] != "version":
            assert call["env"]["PULUMI_BACKEND_URL"] == f"file://{state.resolve()}"
    for site in ("aws-a", "hc-b"):
        work = cloud_spec.base_dir / ".deplat" / "pulumi" / site
        project = yaml.safe_load((work / "Pulumi.yaml").read_text())
        assert project["name"] == "shop" and project["backend"]["url"] == f"file://{state.resolve()}"
        assert (state / ".pulumi" / "stacks" / "shop" / f"{site}.json").exists()
        ups = [c for c in fake_pulumi.commands("up") if c["argv"][-1] == site]
        assert len(ups) == 1 and ups[0]["cwd"] == str(work)
        argv = ups[0]["argv"]
        assert "--event-log" in argv and argv[argv.index("--exec-kind") + 1] == "auto.inline"


@pytest.mark.slow
def test_cold_standby_is_stood_up_only_when_named(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    _, rec = up(cloud_spec, fake_pulumi)
    assert not [c for c in fake_pulumi.commands("up") if c["argv"][-1] == "gcp-c"]
    skipped = [e for e in rec.events if e.kind == "site.skipped"]
    assert [(e.site, e.data["role"]) for e in skipped] == [("gcp-c", "cold")]
    results, _ = up(cloud_spec, fake_pulumi, ["gcp-c"])
    assert [(r.site, r.ok) for r in results] == [("gcp-c", True)]


def test_fenced_site_is_never_touched_even_when_named(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    record_failover(cloud_spec, "aws-a", "hc-b", "suspended")
    results, rec = up(cloud_spec, fake_pulumi, ["aws-a", "hc-b"])
    assert [r.site for r in results] == ["hc-b"]
    assert not [c for c in fake_pulumi.calls() if "aws-a" in c["argv"]]
    note = next(e for e in rec.events if e.kind == "site.skipped")
    assert note.site == "aws-a" and "fenced" in note.message
    assert operations.select_sites(cloud_spec, None, "up").roles["hc-b"] == "primary"


def test_passphrase_reaches_the_cli_only_through_its_environment(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi)
    engine_calls = [c for c in fake_pulumi.calls() if c["argv"][-1] != "version"]
    assert engine_calls
    for call in engine_calls:
        assert call["env"]["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE
        assert not any(PASSPHRASE in arg for arg in call["argv"])
    for path in (cloud_spec.base_dir / ".deplat").rglob("*"):
        if path.is_file():
            assert PASSPHRASE not in path.read_text(errors="replace"), path


def test_config_is_set_from_the_spec_and_secret_values_never_become_arguments(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi)
    set_all = [
        c
        for c in fake_pulumi.commands("config", "set-all")
        if c["argv"][c["argv"].index("--stack") + 1] == "aws-a"
    ]
    assert len(set_all) == 1
    argv = set_all[0]["argv"]
    assert argv[argv.index("--plaintext") + 1] == "aws:region=eu-central-1"
    secret_sets = [c for c in fake_pulumi.commands("config", "set", "hcloud:token")]
    assert len(secret_sets) == 1
    assert "--secret" in secret_sets[0]["argv"] and secret_sets[0]["stdin"] == HCLOUD_TOKEN
    for call in fake_pulumi.calls():
        assert not any(HCLOUD_TOKEN in arg for arg in call["argv"]), call["argv"]
    stack_yaml = cloud_spec.base_dir / ".deplat" / "pulumi" / "hc-b" / "Pulumi.hc-b.yaml"
    assert HCLOUD_TOKEN not in stack_yaml.read_text()
    assert "secure" in yaml.safe_load(stack_yaml.read_text())["config"]["hcloud:token"]
    # every run sets the config again, and keys the spec no longer produces are dropped
    stand_ins["aws"].provider_config = lambda site, secrets, spec_dir=None: {"aws:profile": ("shop", False)}
    up(cloud_spec, fake_pulumi, ["aws-a"])
    config = yaml.safe_load(
        (cloud_spec.base_dir / ".deplat" / "pulumi" / "aws-a" / "Pulumi.aws-a.yaml").read_text()
    )["config"]
    assert config == {"aws:profile": "shop"}


def test_second_up_changes_nothing_and_secret_outputs_are_masked(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    first, _ = up(cloud_spec, fake_pulumi, ["hc-b"])
    assert first[0].changes == {"create": 4}
    assert first[0].outputs["ipv4"].startswith("203.0.113.")
    assert first[0].outputs["token"] == "********"
    second, rec = up(cloud_spec, fake_pulumi, ["hc-b"])
    assert second[0].changes == {"same": 4}
    assert not [e for e in rec.events if e.kind == "site.op" and e.data.get("op") == "create"]
    text = json.dumps([r.to_dict() for r in first + second]) + json.dumps([e.to_dict() for e in rec.events])
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.slow
def test_sites_run_in_parallel(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_pulumi.scenarios(**{"*": "slow"})
    # each `up` takes `slow` s: one after the other, the last would start 2 * slow after the first
    slow = 3.0
    monkeypatch.setenv("FAKE_PULUMI_SLOW", str(slow))
    results, _ = up(cloud_spec, fake_pulumi, ["aws-a", "hc-b", "gcp-c"])
    assert all(r.ok for r in results)
    starts = sorted(c["at"] for c in fake_pulumi.commands("up"))
    assert len(starts) == 3
    # side by side, all three start before the first could have finished (slack for a loaded machine)
    assert starts[-1] - starts[0] < slow


@pytest.mark.parametrize(
    ("scenario", "error_class", "words"),
    [
        ("suspended", "suspended", "account suspended or forbidden"),
        ("forbidden", "forbidden", "account suspended or forbidden"),
        ("transient", "transient", "transient"),
        ("fatal", "fatal", "fatal"),
    ],
)
def test_provider_errors_are_classified_and_one_failing_site_does_not_stop_the_others(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, scenario: str, error_class: str, words: str
) -> None:
    fake_pulumi.scenarios(aws_a=scenario)
    results, rec = up(cloud_spec, fake_pulumi)
    by_site = {r.site: r for r in results}
    assert by_site["hc-b"].ok and by_site["hc-b"].outputs["ipv4"]
    failed = by_site["aws-a"]
    assert not failed.ok and failed.error_class == error_class
    assert "RunInstances" in (failed.error or "")
    shown = next(e for e in rec.events if e.kind == "site.error" and e.site == "aws-a")
    assert shown.message.startswith(words + ":")


def test_missing_credentials_fail_that_site_only(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HCLOUD_TOKEN")
    results, _ = up(cloud_spec, fake_pulumi)
    by_site = {r.site: r for r in results}
    assert by_site["aws-a"].ok
    assert by_site["hc-b"].error_class == "credentials" and "HCLOUD_TOKEN is not set" in by_site["hc-b"].error


def test_plugin_is_installed_once_at_the_providers_version(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi, ["hc-b"])
    up(cloud_spec, fake_pulumi, ["hc-b"])
    installs = fake_pulumi.commands("plugin", "install")
    assert [c["argv"][-3:] for c in installs] == [["resource", "hcloud", "v1.43.3"]]


def test_cli_too_old_for_inline_refresh_and_destroy_is_refused_before_anything_runs(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake stands in for a CLI below 3.181 (the real one here is newer): the SDK would raise
    InvalidVersionError at the first refresh or destroy, after `up` had worked."""
    from deplat.errors import InputError

    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.180.0")
    with pytest.raises(InputError) as caught:
        up(cloud_spec, fake_pulumi, ["aws-a"])
    assert "3.181.0" in caught.value.message and "3.180.0" in caught.value.message
    assert caught.value.hint and "deplat doctor --install-pulumi" in caught.value.hint
    assert [c["argv"][-1] for c in fake_pulumi.calls()] == ["version"]


def test_events_also_arrive_through_the_event_log_file_of_older_clis(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.200.0")
    results, rec = up(cloud_spec, fake_pulumi, ["aws-a"])
    assert results[0].ok
    log_arg = fake_pulumi.commands("up")[0]["argv"]
    assert not log_arg[log_arg.index("--event-log") + 1].startswith("tcp://")
    ops = [(e.data["op"], e.data["name"]) for e in rec.events if e.kind == "site.op" and "name" in e.data]
    assert ("create", "aws-a-instance") in ops


def test_status_reads_state_only_and_reports_outputs(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi, ["aws-a"])
    statuses = {s.site: s for s in operations.status_sites(cloud_spec, None, SecretStore(cloud_spec))}
    assert statuses["aws-a"].exists and statuses["aws-a"].running and statuses["aws-a"].role == "primary"
    assert statuses["aws-a"].last_update and statuses["aws-a"].detail["last_result"] == "succeeded"
    assert statuses["hc-b"].exists is False and statuses["gcp-c"].role == "cold"
    addresses = PulumiDriver(cloud_spec, SecretStore(cloud_spec)).addresses(cloud_spec.site("aws-a"))
    assert addresses.ipv4 == [statuses["aws-a"].outputs["ipv4"]]
    touching = {"up", "preview", "refresh", "destroy"}
    after = fake_pulumi.calls()[-10:]
    assert not [c for c in after if touching & set(c["argv"])]


def test_destroy_deletes_resources_and_removes_the_stack(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi, ["aws-a"])
    results = operations.destroy_sites(cloud_spec, ["aws-a", "hc-b"], SecretStore(cloud_spec))
    by_site = {r.site: r for r in results}
    assert by_site["aws-a"].ok and by_site["aws-a"].changes == {"delete": 4}
    assert by_site["hc-b"].ok and by_site["hc-b"].changes == {}  # nothing was deployed there
    assert fake_pulumi.commands("stack", "rm")
    state = cloud_spec.base_dir / ".deplat" / "state" / ".pulumi" / "stacks" / "shop"
    assert not (state / "aws-a.json").exists()


def test_refresh_reads_what_exists(cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict) -> None:
    up(cloud_spec, fake_pulumi, ["aws-a"])
    results = operations.refresh_sites(cloud_spec, ["aws-a"], SecretStore(cloud_spec))
    assert results[0].ok and results[0].changes == {"refresh": 4}


def test_preview_makes_no_changes(cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict) -> None:
    from deplat.operations import changes_anything, preview_sites

    previews = preview_sites(cloud_spec, ["aws-a", "hc-b"], SecretStore(cloud_spec))
    assert [p.changes for p in previews] == [{"create": 4}, {"create": 4}]
    assert changes_anything(previews)
    assert not fake_pulumi.commands("up")
    state = cloud_spec.base_dir / ".deplat" / "state" / ".pulumi" / "stacks" / "shop"
    assert json.loads((state / "aws-a.json").read_text())["resources"] == []


def test_a_driver_bug_in_one_site_is_reported_not_raised(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    def broken(site: object, secrets: object, spec_dir: object = None) -> dict:
        raise ZeroDivisionError("boom")

    stand_ins["aws"].provider_config = broken
    results, _ = up(cloud_spec, fake_pulumi)
    by_site = {r.site: r for r in results}
    assert by_site["hc-b"].ok
    assert not by_site["aws-a"].ok and "ZeroDivisionError" in by_site["aws-a"].error


def test_state_dir_is_a_plain_pulumi_backend(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    up(cloud_spec, fake_pulumi, ["aws-a"])
    backend = Path(cloud_spec.base_dir / ".deplat" / "state")
    assert (backend / ".pulumi" / "stacks" / "shop" / "aws-a.json").is_file()


def fake_diagnostics() -> dict[str, dict[str, str]]:
    import runpy

    from tests.engine.conftest import FAKE_BIN

    return runpy.run_path(str(FAKE_BIN / "pulumi"), run_name="fake_pulumi")["DIAGNOSTICS"]


@pytest.mark.parametrize("provider", ["aws", "hcloud", "gcp"])
@pytest.mark.parametrize("scenario", ["suspended", "forbidden", "transient", "fatal"])
def test_real_provider_modules_classify_what_their_plugins_say(provider: str, scenario: str) -> None:
    """The fake speaks each provider's error texts; the real provider module must classify them."""
    from deplat import providers
    from deplat.engine.errors import classify

    text = fake_diagnostics()[provider][scenario]
    failure = classify(
        ["code: 255\n stderr: error: update failed"],
        providers.get(provider).classify_error,
        diagnostics=[text, "update failed"],
    )
    assert failure.error_class == scenario
    assert failure.message == text


def test_real_classifier_through_the_engine(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict
) -> None:
    from deplat import providers

    stand_ins["hcloud"].classify_error = providers.get("hcloud").classify_error
    fake_pulumi.scenarios(hc_b="suspended")
    results = operations.up_sites(cloud_spec, ["hc-b"], SecretStore(cloud_spec))
    assert results[0].error_class == "suspended" and "account is blocked" in results[0].error


def test_archive_state_exports_from_the_backend_without_decrypting_secrets(
    cloud_spec: Spec, fake_pulumi: FakePulumi, stand_ins: dict, tmp_path: Path
) -> None:
    """A fenced site's state is archived from the backend only (no plugin, no provider API), and
    its secrets stay ciphertext: the Automation API's export_stack would add --show-secrets."""
    up(cloud_spec, fake_pulumi, ["hc-b"])  # the fake keeps the secret config value as a secret output
    dest = tmp_path / "archive" / "hc-b"
    before = len(fake_pulumi.calls())

    summary = PulumiDriver(cloud_spec, SecretStore(cloud_spec)).archive_state(cloud_spec.site("hc-b"), dest)

    assert summary["via"] == "pulumi stack export" and summary["files"] == ["hc-b.export.json"]
    text = (dest / "hc-b.export.json").read_text()
    assert '"ciphertext"' in text and HCLOUD_TOKEN not in text
    argv = fake_pulumi.commands("stack", "export")[-1]["argv"]
    assert "--show-secrets" not in argv and argv[argv.index("--stack") + 1] == "hc-b"
    during = [c["argv"] for c in fake_pulumi.calls()[before:]]
    assert not [argv for argv in during if "plugin" in argv]  # nothing of the provider is needed
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    assert oct((dest / "hc-b.export.json").stat().st_mode & 0o777) == "0o600"


def test_archive_state_copies_the_file_backend_checkpoint_when_the_cli_is_gone(
    cloud_spec: Spec,
    fake_pulumi: FakePulumi,
    stand_ins: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deplat.engine import workspace

    up(cloud_spec, fake_pulumi, ["aws-a"])
    monkeypatch.setattr(workspace, "find_pulumi", lambda: None)
    monkeypatch.setattr(workspace, "_commands", {})
    dest = tmp_path / "archive" / "aws-a"

    summary = PulumiDriver(cloud_spec, SecretStore(cloud_spec)).archive_state(cloud_spec.site("aws-a"), dest)

    assert summary["via"] == "file backend copy" and "not installed" in summary["note"]
    assert summary["files"] == ["aws-a.json", "Pulumi.aws-a.yaml"]
    assert json.loads((dest / "aws-a.json").read_text())["resources"]
