"""The cloud-init bootstrap: valid, the same on every provider, services under systemd, secrets safe."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deplat.spec.model import Spec
from deplat.stacks.bootstrap import PLACEHOLDER_BYTES, ProviderBits, render, service_unit
from tests.stacks.conftest import CLOUD_SPEC, cloud_spec

SECRETS = {"SHOP_DB_PASSWORD": "pw-Secret-Value-1"}
DEVICES = {
    "aws": ("aws-a", "vol-0a1b2c3d4e5f60718"),
    "gcp": ("gcp-b", ""),
    "hcloud": ("hz-c", "100123456"),
}


def _rendered(spec: Spec, provider: str) -> tuple[str, str]:
    """(bootstrap text, the provider's data device) for the provider's site in the spec."""

    site_name, volume_id = DEVICES[provider]
    device = importlib.import_module(f"deplat.providers.{provider}").data_device(volume_id)
    return render(spec, spec.site(site_name), ProviderBits(device), SECRETS), device


def _files(text: str) -> dict[str, dict]:
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


@pytest.mark.slow
@pytest.mark.parametrize("provider", DEVICES)
def test_rendered_cloud_init_passes_cloud_init_schema(spec: Spec, provider: str, tmp_path: Path) -> None:
    binary = shutil.which("cloud-init")
    if binary is None:
        pytest.skip("the cloud-init binary is not installed (Debian package cloud-init)")
    text, _ = _rendered(spec, provider)
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    done = subprocess.run(
        [binary, "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid cloud-config" in done.stdout


def test_bootstrap_is_identical_across_providers_apart_from_the_data_device(spec: Spec) -> None:
    texts = []
    for provider in DEVICES:
        text, device = _rendered(spec, provider)
        assert text.count(device) == 1  # the one documented provider bit, in deplat-data.service
        texts.append(text.replace(device, "<DATA_DEVICE>"))
    assert texts[0] == texts[1] == texts[2]


def test_bootstrap_installs_the_runtime_and_the_https_front(spec: Spec) -> None:
    doc = yaml.safe_load(_rendered(spec, "aws")[0])
    assert doc["packages"] == ["docker.io", "caddy", "restic"]
    caddy = _files(_rendered(spec, "aws")[0])["/etc/caddy/Caddyfile"]
    assert caddy["defer"] is True  # after the package has written its own default
    site = "shop.example.org, www.shop.example.org {\n    import /etc/deplat/tls/*.caddy\n    reverse_proxy 127.0.0.1:8080\n}"
    assert site in caddy["content"]  # deplat's certificate (deplat.remote.certs), never Caddy's own ACME
    assert "{\n    local_certs\n    skip_install_trust\n}" in caddy["content"]


def test_bootstrap_mounts_the_data_volume_before_the_services(spec: Spec) -> None:
    text, device = _rendered(spec, "hcloud")
    files = _files(text)
    unit = files["/etc/systemd/system/deplat-data.service"]["content"]
    assert f"ExecStart=/usr/local/sbin/deplat-mount-data {device}" in unit
    script = files["/usr/local/sbin/deplat-mount-data"]["content"]
    assert "mkfs.ext4" in script and 'blkid "$dev"' in script  # formats only a blank device
    web = files["/etc/systemd/system/deplat-web.service"]["content"]
    assert "Requires=docker.service deplat-data.service" in web
    assert "After=docker.service deplat-data.service" in web


def test_services_run_under_systemd_and_come_back_after_a_reboot(spec: Spec) -> None:
    doc = yaml.safe_load(_rendered(spec, "gcp")[0])
    enable = [cmd for cmd in doc["runcmd"] if cmd[:3] == ["systemctl", "enable", "--now"]]
    assert [
        "systemctl",
        "enable",
        "--now",
        "deplat-data.service",
        "deplat-web.service",
        "deplat-voice.service",
    ] in (enable)
    for name in ("web", "voice"):
        unit = _files(_rendered(spec, "gcp")[0])[f"/etc/systemd/system/deplat-{name}.service"]["content"]
        assert "Restart=always" in unit and "WantedBy=multi-user.target" in unit


def test_service_unit_runs_image_command_args_ports_env_and_volumes(spec: Spec) -> None:
    unit = service_unit("web", spec.services["web"])
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert start == (
        "ExecStart=/usr/bin/docker run --rm --name %N --network deplat --network-alias web "
        "--env-file /etc/deplat/web.env -p 8080:8080/tcp -p 127.0.0.1:9090:9090/tcp "
        "-v /srv/deplat/web/data:/var/lib/shop --entrypoint /app/serve ghcr.io/acme/shop:2.1 "
        "--port 8080 --verbose"
    )
    assert "ExecStartPre=/bin/mkdir -p /srv/deplat/web/data" in unit
    # %N: the unit's name without .service, deplat-web, the container's name wherever it appears
    assert "ExecStartPre=-/usr/bin/docker rm -f %N" in unit and "ExecStop=/usr/bin/docker stop %N" in unit


def test_systemd_specifiers_and_variables_are_escaped() -> None:
    spec = cloud_spec(CLOUD_SPEC.replace("args: [--verbose]", "args: ['100% of $HOME', 'say \"hi\"']"))
    unit = service_unit("web", spec.services["web"])
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert start.endswith('"100%% of $$HOME" "say \\"hi\\""')


def test_secrets_go_to_a_root_only_env_file(spec: Spec) -> None:
    files = _files(_rendered(spec, "aws")[0])
    env = files["/etc/deplat/web.env"]
    assert env["permissions"] == "0600"
    assert env["content"].splitlines()[1:] == ["MODE=prod", "SHOP_DB_PASSWORD=pw-Secret-Value-1"]


def test_unknown_secret_values_are_placeholders_of_fixed_size(spec: Spec) -> None:
    text = render(spec, spec.site("aws-a"), ProviderBits("/dev/x"))
    env = _files(text)["/etc/deplat/web.env"]["content"]
    assert f"SHOP_DB_PASSWORD={'x' * PLACEHOLDER_BYTES}" in env


def test_a_secret_with_a_newline_is_refused_without_showing_it(spec: Spec) -> None:
    with pytest.raises(ValueError, match="SHOP_DB_PASSWORD") as caught:
        render(spec, spec.site("aws-a"), ProviderBits("/dev/x"), {"SHOP_DB_PASSWORD": "line1\nline2"})
    assert "line1" not in str(caught.value)


def test_the_apps_key_goes_to_root_key_only_and_offline_a_placeholder_of_its_size(spec: Spec) -> None:
    from deplat.stacks.bootstrap import placeholder_key
    from deplat.transport.keys import generate

    line = generate("shop").public_line
    doc = yaml.safe_load(render(spec, spec.site("aws-a"), ProviderBits("/dev/x"), authorized_key=line))
    assert doc["ssh_authorized_keys"] == [line]
    assert doc["disable_root"] is False and doc["ssh_pwauth"] is False  # cc_ssh: no "login as" prefix
    offline = yaml.safe_load(render(spec, spec.site("aws-a"), ProviderBits("/dev/x")))
    assert offline["ssh_authorized_keys"] == [placeholder_key("shop")]
    assert len(placeholder_key("shop")) == len(line)
