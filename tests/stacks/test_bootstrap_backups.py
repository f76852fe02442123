"""The bootstrap's backups: restic timers per stateful service, restore at first boot, secrets kept
in root-only files; the rendered units, scripts and cloud-config checked by the real tools, and the
rendered scripts run for real against a local restic repository."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from deplat.spec.model import Spec
from deplat.stacks.bootstrap import PLACEHOLDER_BYTES, ProviderBits, render
from tests.stacks.conftest import CLOUD_SPEC, cloud_spec
from tests.support.clock import CLOCK_ENV, clock, shifted_restic
from tests.support.trees import write_files

BACKUPS = """\
backups:
  interval: 300
  keep: 1
  repositories:
    - {name: s3-eu, type: s3, bucket: shop-backups, region: eu-central-1, prefix: shop,
       access_key: BK_S3_ID, secret_key: BK_S3_SECRET}
    - {name: hetzner-os, type: hcloud, bucket: shop-backups, region: fsn1,
       access_key: BK_HZ_ID, secret_key: BK_HZ_SECRET}
    - {name: gcs-eu, type: gcs, bucket: shop-gcs, access_key: BK_GCS_ID, secret_key: BK_GCS_SECRET}
"""
PRE_BACKUP = "    pre_backup: [sh, -c, 'echo dump > /var/lib/shop/dump.sql']\n"
SECRETS = {
    "SHOP_DB_PASSWORD": "pw-Secret-Value-1",
    "DEPLAT_BACKUP_PASSWORD": "restic-Pass'word-2",
    "BK_S3_ID": "AKIA-s3-id-3",
    "BK_S3_SECRET": "s3-Secret-4",
    "BK_HZ_ID": "hz-id-5",
    "BK_HZ_SECRET": "hz-Secret-6",
    "BK_GCS_ID": "gcs-id-7",
    "BK_GCS_SECRET": "gcs-Secret-8",
}


def _spec(backups: str = BACKUPS) -> Spec:
    text = CLOUD_SPEC.replace("domain:", backups + "domain:")
    text = text.replace(
        "    health: {port: 8080, path: /healthz}\n",
        "    health: {port: 8080, path: /healthz}\n" + PRE_BACKUP,
    )
    return cloud_spec(text)


def _files(text: str) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


def _text(site: str = "aws-a", secrets: dict[str, str] | None = SECRETS, spec: Spec | None = None) -> str:
    spec = spec or _spec()
    return render(spec, spec.site(site), ProviderBits("/dev/disk/by-id/x"), secrets)


def _tool(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        pytest.skip(f"{name} is not installed")
    return binary


# --- what is written -----------------------------------------------------------------------------


def test_restic_is_installed_and_each_stateful_service_gets_a_backup_timer_on_the_primary() -> None:
    doc = yaml.safe_load(_text())
    assert "restic" in doc["packages"]
    files = _files(_text())
    for name in ("web", "voice"):  # started with its service, every boot
        unit = files[f"/etc/systemd/system/deplat-{name}.service"]["content"]
        wants = next(line for line in unit.splitlines() if line.startswith("Wants="))
        assert f"deplat-backup@{name}.timer" in wants
    assert (
        "ExecStart=/usr/local/sbin/deplat-backup %i"
        in files["/etc/systemd/system/deplat-backup@.service"]["content"]
    )
    timer = files["/etc/systemd/system/deplat-backup@.timer"]["content"]
    assert "OnUnitActiveSec=300000ms" in timer  # backups.interval: 300


def test_a_warm_standby_has_the_units_but_no_running_timers() -> None:
    warm = _files(_text("gcp-b"))
    assert "deplat-backup@web.timer" not in warm["/etc/systemd/system/deplat-web.service"]["content"]
    assert "/etc/systemd/system/deplat-backup@.timer" in warm
    cold = _files(_text("hz-c"))  # stood up to become the primary
    assert "deplat-backup@web.timer" in cold["/etc/systemd/system/deplat-web.service"]["content"]


def test_restore_runs_before_each_stateful_service_starts() -> None:
    files = _files(_text())
    unit = files["/etc/systemd/system/deplat-restore@.service"]["content"]
    assert "Before=deplat-%i.service" in unit and "After=deplat-data.service" in unit
    assert "ExecStart=/usr/local/sbin/deplat-restore %i" in unit
    web = files["/etc/systemd/system/deplat-web.service"]["content"]
    assert "Wants=network-online.target deplat-restore@web.service deplat-backup@web.timer" in web
    backup = files["/etc/systemd/system/deplat-backup@.service"]["content"]
    assert "After=deplat-data.service deplat-restore@%i.service" in backup


def test_every_repository_in_order_in_a_root_only_env_file_with_the_password() -> None:
    files = _files(_text())
    env = [f for path, f in files.items() if path.startswith("/etc/deplat/restic/") and path.endswith(".env")]
    assert [f["path"].rsplit("/", 1)[1] for f in env] == [
        "restic.env",
        "repo-01.env",
        "repo-02.env",
        "repo-03.env",
    ]
    assert all(f["permissions"] == "0600" for f in env)
    common = files["/etc/deplat/restic/restic.env"]["content"]
    assert "RESTIC_PASSWORD='restic-Pass'\"'\"'word-2'" in common  # shell-quoted
    assert "DEPLAT_SITE=aws-a" in common and "DEPLAT_KEEP=1" in common
    first = files["/etc/deplat/restic/repo-01.env"]["content"]
    assert "RESTIC_REPOSITORY=s3:https://s3.eu-central-1.amazonaws.com/shop-backups/shop" in first
    assert "AWS_SECRET_ACCESS_KEY=s3-Secret-4" in first
    assert "hz-Secret-6" in files["/etc/deplat/restic/repo-02.env"]["content"]


def test_secrets_appear_only_in_root_only_files() -> None:
    text = _text()
    for path, f in _files(text).items():
        if f["permissions"] != "0600":
            assert not any(v in f["content"] for v in SECRETS.values()), path
    body = yaml.safe_load(text)
    assert not any(v in json.dumps(body["runcmd"]) for v in SECRETS.values())


def test_with_placeholder_secrets_no_secret_value_is_rendered() -> None:
    text = _text(secrets=None)
    assert not any(v in text for v in SECRETS.values())
    assert f"RESTIC_PASSWORD={'x' * PLACEHOLDER_BYTES}" in text


def test_a_backup_secret_with_a_newline_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="BK_HZ_SECRET") as caught:
        _text(secrets=SECRETS | {"BK_HZ_SECRET": "line1\nline2"})
    assert "line1" not in str(caught.value)


def test_the_pre_backup_command_runs_in_the_services_container() -> None:
    pre = _files(_text())["/etc/deplat/restic/pre-web"]
    assert pre["permissions"] == "0700"
    assert "exec docker exec deplat-web sh -c 'echo dump > /var/lib/shop/dump.sql'" in pre["content"]


def test_no_backup_units_without_repositories(spec: Spec) -> None:
    text = render(spec, spec.site("aws-a"), ProviderBits("/dev/x"))
    assert "deplat-backup" not in text and "deplat-restore" not in text


# --- checked by the real tools --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("site", ["aws-a", "gcp-b", "hz-c"])
def test_backed_up_cloud_init_passes_cloud_init_schema(site: str, tmp_path: Path) -> None:
    path = tmp_path / "user-data.yaml"
    path.write_text(_text(site))
    done = subprocess.run(
        [_tool("cloud-init"), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Valid cloud-config" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_every_shell_script_passes_shellcheck(tmp_path: Path) -> None:
    scripts = [f for f in _files(_text()).values() if f["content"].startswith("#!/bin/sh")]
    assert len(scripts) == 4  # mount, backup, restore, web's pre-backup
    for i, f in enumerate(scripts):
        path = tmp_path / f"script{i}.sh"
        path.write_text(f["content"])
        done = subprocess.run([_tool("shellcheck"), str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f["path"] + "\n" + done.stdout


@pytest.mark.slow
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified under --root: a tree holding the rendered files, with stand-ins for the executables
    the units name that the packages install (docker, mkdir), so every ExecStart resolves."""
    files = _files(_text())
    for path, f in files.items():
        dest = tmp_path / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f["content"])
        dest.chmod(int(f["permissions"], 8))
    for stand_in in ("usr/bin/docker", "bin/mkdir"):
        dest = tmp_path / stand_in
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("#!/bin/sh\n")
        dest.chmod(0o755)
    units = ["deplat-data.service", "deplat-restore@web.service", "deplat-web.service"]
    units += ["deplat-backup@web.service", "deplat-backup@web.timer", "deplat-backup@voice.timer"]
    flags = ["--man=no", "--generators=no", "--recursive-errors=no", f"--root={tmp_path}"]
    done = subprocess.run(
        [_tool("systemd-analyze"), "verify", *flags, *units],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "ignoring" not in done.stderr, done.stdout + done.stderr


# --- run for real ----------------------------------------------------------------------------------


def _run(script: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args], env=os.environ | env, capture_output=True, text=True, timeout=120
    )


def _snapshots(repo: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["restic", "-r", str(repo), "snapshots", "--json", "--no-lock"],
        env=os.environ | {"RESTIC_PASSWORD": SECRETS["DEPLAT_BACKUP_PASSWORD"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.slow
def test_rendered_scripts_back_up_to_every_reachable_repository_and_restore_at_first_boot(
    tmp_path: Path,
) -> None:
    _tool("restic")
    # the first repository refuses every connection: skipped within its deadline, the second serves
    dead = BACKUPS.replace("region: eu-central-1,", "endpoint: 'http://127.0.0.1:9', deadline: 1,")
    files = _files(_text(spec=_spec(dead)))
    conf, data, bin_dir, repo = tmp_path / "conf", tmp_path / "data", tmp_path / "bin", tmp_path / "repo"
    for d in (conf, data, bin_dir):
        d.mkdir()
    for name in ("restic.env", "repo-01.env", "pre-web"):
        f = files[f"/etc/deplat/restic/{name}"]
        (conf / name).write_text(f["content"])
        (conf / name).chmod(int(f["permissions"], 8))
    (conf / "repo-02.env").write_text(f"RESTIC_REPOSITORY={repo}\nDEPLAT_DEADLINE=20\n")
    backup, restore = tmp_path / "deplat-backup", tmp_path / "deplat-restore"
    backup.write_text(files["/usr/local/sbin/deplat-backup"]["content"])
    restore.write_text(files["/usr/local/sbin/deplat-restore"]["content"])
    # docker stand-in: the pre-backup command's dump lands in the service's folder
    (bin_dir / "docker").write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/docker-args\necho dump > "$DEPLAT_DATA/web/dump.sql"\n'
    )
    (bin_dir / "docker").chmod(0o755)
    env = {"DEPLAT_CONF": str(conf), "DEPLAT_DATA": str(data), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    (data / "web").mkdir()
    (data / "web" / "rows.txt").write_text("first\n")

    done = _run(backup, ["web"], env)
    assert done.returncode == 1, done.stderr  # one repository failed, and the unit says so
    assert "backup of web to repo-01.env failed" in done.stderr
    (data / "web" / "rows.txt").write_text("first\nsecond\n")
    done = _run(backup, ["web"], env)
    assert "repo-02.env" not in done.stderr
    snaps = _snapshots(repo)
    assert len(snaps) == 1  # keep: 1, after forget --prune
    assert snaps[0]["hostname"] == "aws-a" and set(snaps[0]["tags"]) == {"app=shop", "service=web", "seq=2"}
    assert (tmp_path / "docker-args").read_text().split()[:3] == ["exec", "deplat-web", "sh"]
    assert done.stderr.count(SECRETS["DEPLAT_BACKUP_PASSWORD"]) == 0

    # an empty folder is a snapshot too (an empty marker, dropped on restore)
    (data / "voice").mkdir()
    assert "backup of voice to repo-02.env failed" not in _run(backup, ["voice"], env).stderr

    fresh = tmp_path / "fresh"  # a new site's empty volume
    fresh.mkdir()
    done = _run(restore, ["web", "voice"], env | {"DEPLAT_DATA": str(fresh)})
    assert "repository repo-01.env skipped for web" in done.stderr
    assert (fresh / "web" / "rows.txt").read_text() == "first\nsecond\n"
    assert (fresh / "web" / "dump.sql").read_text() == "dump\n"
    assert (fresh / "voice").is_dir() and not any((fresh / "voice").iterdir())

    # a folder holding data is never overwritten, and a restore runs once per volume
    (data / "web" / "rows.txt").write_text("live\n")
    _run(restore, ["web"], env)
    assert (data / "web" / "rows.txt").read_text() == "live\n"
    assert (data / ".deplat-restored-web").exists()
    assert stat.S_IMODE((conf / "restic.env").stat().st_mode) == 0o600


@pytest.mark.slow
def test_rendered_scripts_order_snapshots_by_sequence_so_a_clock_jump_never_picks_a_stale_one(
    tmp_path: Path,
) -> None:
    """The old primary's clock jumps two hours ahead; the site promoted after it backs up with a
    good clock: the first boot restores the promoted site's data, not the future-dated stale one;
    and retention keeps the newest by sequence (restic's --keep-last would keep the stale one)."""
    _tool("restic")
    spec = _spec(BACKUPS.replace("keep: 1", "keep: 2"))
    bin_dir = shifted_restic(tmp_path / "bin")  # restic whose backups take CLOCK_ENV's date
    repo = tmp_path / "repo"
    files = _files(_text("aws-a", spec=spec))
    backup, restore = tmp_path / "deplat-backup", tmp_path / "deplat-restore"
    backup.write_text(files["/usr/local/sbin/deplat-backup"]["content"])
    restore.write_text(files["/usr/local/sbin/deplat-restore"]["content"])

    def site(name: str) -> tuple[dict[str, str], Path]:
        conf, data = tmp_path / f"conf-{name}", tmp_path / f"data-{name}"
        conf.mkdir()
        common = _files(_text(name, spec=spec))["/etc/deplat/restic/restic.env"]["content"]
        (conf / "restic.env").write_text(common)
        (conf / "repo-01.env").write_text(f"RESTIC_REPOSITORY={repo}\nDEPLAT_DEADLINE=20\n")
        env = {"DEPLAT_CONF": str(conf), "DEPLAT_DATA": str(data), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        return env, data

    def back_up(env: dict[str, str], data: Path, text: str, ahead: float = 0) -> None:
        write_files(data / "web", {"rows.txt": text})
        done = _run(backup, ["web"], env | ({CLOCK_ENV: clock(ahead)} if ahead else {}))
        assert done.returncode == 0, done.stderr

    def first_boot() -> str:
        fresh = Path(tempfile.mkdtemp(dir=tmp_path))
        done = _run(restore, ["web"], {**old, "DEPLAT_DATA": str(fresh)})
        assert done.returncode == 0, done.stderr
        return (fresh / "web" / "rows.txt").read_text()

    def seqs(host: str) -> list[int]:
        tags = [s["tags"] for s in _snapshots(repo) if s["hostname"] == host]
        return sorted(int(t[4:]) for ts in tags for t in ts if t.startswith("seq="))

    old, old_data = site("aws-a")
    new, new_data = site("hz-c")
    back_up(old, old_data, "v1")
    back_up(old, old_data, "v2 stale", ahead=7200)  # the old primary's clock runs two hours ahead
    back_up(new, new_data, "v3 promoted")  # the site promoted after it, its clock right
    assert seqs("aws-a") == [1, 2] and seqs("hz-c") == [3]
    assert first_boot() == "v3 promoted"  # by time, "v2 stale" would be restored

    back_up(new, new_data, "v4 stale", ahead=7200)  # now its clock jumps, and is corrected
    back_up(new, new_data, "v5")
    back_up(new, new_data, "v6")
    assert seqs("hz-c") == [5, 6]  # keep: 2 by sequence; --keep-last would have kept "v4 stale"
    assert first_boot() == "v6"


@pytest.mark.slow
def test_an_old_primary_that_comes_back_backs_nothing_up_once_a_failover_moved_the_lease(
    tmp_path: Path,
) -> None:
    """A suspended primary's timers could not be switched off; when its provider lifts the
    suspension they run again. The failover named the new primary in the repositories
    (deplat.data.lease): the old site's script backs nothing up, the new primary's does, and a later
    failover back gives the lease back."""
    from deplat.data import lease
    from deplat.data.restic import Repository
    from deplat.transport import DirectTransport

    _tool("restic")
    spec = _spec(BACKUPS.replace("keep: 1", "keep: 5"))
    repo = tmp_path / "repo"
    backup = tmp_path / "deplat-backup"
    backup.write_text(_files(_text("aws-a", spec=spec))["/usr/local/sbin/deplat-backup"]["content"])

    def site(name: str) -> tuple[dict[str, str], Path]:
        conf, data = tmp_path / f"conf-{name}", tmp_path / f"data-{name}"
        conf.mkdir()
        (conf / "restic.env").write_text(
            _files(_text(name, spec=spec))["/etc/deplat/restic/restic.env"]["content"]
        )
        (conf / "repo-01.env").write_text(f"RESTIC_REPOSITORY={repo}\nDEPLAT_DEADLINE=20\n")
        return {"DEPLAT_CONF": str(conf), "DEPLAT_DATA": str(data)}, data

    def back_up(env: dict[str, str], data: Path, text: str) -> subprocess.CompletedProcess[str]:
        write_files(data / "web", {"rows.txt": text})
        done = _run(backup, ["web"], env)
        assert done.returncode == 0, done.stderr
        return done

    def hosts() -> list[str]:
        return [s["hostname"] for s in _snapshots(repo) if "service=web" in s["tags"]]

    def grant(to: str) -> lease.Granted:
        where = Repository(name="s3-eu", url=str(repo), held_by="aws")
        return lease.grant(
            [where], SECRETS["DEPLAT_BACKUP_PASSWORD"], DirectTransport(tmp_path), app="shop", site=to
        )

    old, old_data = site("aws-a")
    new, new_data = site("hz-c")
    back_up(old, old_data, "v1")  # no lease yet: the primary backs up
    assert hosts() == ["aws-a"]
    granted = grant("hz-c")  # the failover to hz-c
    assert granted.written == ["s3-eu"] and granted.seq == 1
    refused = back_up(old, old_data, "v1 stale, after the suspension was lifted")
    assert "hz-c is the primary now" in refused.stderr
    back_up(new, new_data, "v2")
    assert hosts() == ["aws-a", "hz-c"]  # nothing from the old primary after the failover
    assert grant("aws-a").seq == 2  # a failover back
    back_up(old, old_data, "v3")
    assert hosts() == ["aws-a", "hz-c", "aws-a"]


def test_preflight_names_missing_backup_secrets_before_anything_starts() -> None:
    from deplat.preflight import secret_gaps
    from deplat.secrets import SecretStore

    spec = _spec()
    present = {k: v for k, v in SECRETS.items() if k not in ("DEPLAT_BACKUP_PASSWORD", "BK_GCS_SECRET")}
    gaps = secret_gaps(spec, [spec.site("aws-a")], SecretStore(spec, environ=present))
    assert {(g.name, g.needed_by) for g in gaps if g.needed_by == "backups"} == {
        ("DEPLAT_BACKUP_PASSWORD", "backups"),
        ("BK_GCS_SECRET", "backups"),
    }
