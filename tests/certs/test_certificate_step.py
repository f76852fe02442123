"""The failover's certificate step and ``deplat up``'s hook without a certificate or a VM (no
network), and the Caddyfile a cloud site gets, read by the real Caddy: it never runs ACME itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deplat.certs.deploy import after_up, before_traffic
from deplat.remote import Layout
from deplat.secrets import SecretStore
from deplat.site_results import SiteResult
from deplat.spec import load_spec
from deplat.spec.model import Spec
from deplat.stacks.bootstrap import _caddyfile
from deplat.stacks.vm_layout import TLS_DIR

SPEC = (
    "app: shop\nservices:\n  web:\n    image: web:1\n    ports: [{port: 8080, public: true}]\n"
    "    local: {command: [python3, -m, http.server, '{port}']}\n"
    "domain: {zone: shop.example.org, names: [shop.example.org, www.shop.example.org]}\n"
    "sites:\n  - {name: aws-a, provider: aws, role: primary, region: eu-central-1}\n"
    "  - {name: local-b, provider: local, role: warm, options: {address: 127.0.0.12}}\n"
)


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir()
    path.write_text(SPEC)
    return load_spec(path)


class NoDriver:
    """Stands where a site driver goes: the test fails if anything asks it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the driver was asked for {name}")


def test_the_certificate_step_is_skipped_with_a_note_when_deplat_holds_none(spec: Spec) -> None:
    secrets = SecretStore(spec, environ={"DEPLAT_PASSPHRASE": "a passphrase"})

    skipped = before_traffic(spec, spec.site("aws-a"), secrets, NoDriver())  # type: ignore[arg-type]
    assert skipped["skipped"] and "holds no certificate" in skipped["note"]
    local = before_traffic(spec, spec.site("local-b"), secrets, NoDriver())  # type: ignore[arg-type]
    assert local["skipped"] and "no VM" in local["note"]
    up = [SiteResult("aws-a", "up", True), SiteResult("local-b", "up", True)]
    assert after_up(spec, up, secrets, drivers=lambda s: NoDriver()) == []  # type: ignore[arg-type,return-value]


def adapt(path: Path, caddyfile: str) -> dict[str, Any]:
    """The JSON configuration the real Caddy makes of ``caddyfile``."""
    path.write_text(caddyfile)
    argv = ["caddy", "adapt", "--config", str(path), "--adapter", "caddyfile"]
    adapted = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(adapted.stdout))


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy is not installed")
def test_caddy_reads_the_sites_caddyfile_and_never_asks_a_public_acme_ca(spec: Spec, tmp_path: Path) -> None:
    text = _caddyfile(spec)
    assert "import /etc/deplat/tls/*.caddy" in text
    assert Layout().tls_dir == TLS_DIR == "/etc/deplat/tls"  # where deplat.remote.certs installs
    config = adapt(tmp_path / "Caddyfile", text)
    # before deplat's certificate is installed (the import matches nothing): Caddy's local CA only
    issuers = [i["module"] for p in config["apps"]["tls"]["automation"]["policies"] for i in p["issuers"]]
    assert issuers == ["internal"]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False
    # once installed: Caddy loads deplat's files for the app's names
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "tls.caddy").write_text(f"tls {tls_dir}/fullchain.pem {tls_dir}/privkey.pem\n")
    loaded = adapt(tmp_path / "Caddyfile", _caddyfile(spec, tls_dir=str(tls_dir)))["apps"]["tls"][
        "certificates"
    ]["load_files"]
    assert loaded == [
        {"certificate": f"{tls_dir}/fullchain.pem", "key": f"{tls_dir}/privkey.pem", "tags": ["cert0"]}
    ]
