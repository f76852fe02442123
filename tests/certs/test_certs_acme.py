"""The app's certificate from a real ACME server (pebble) through DNS-01 on a real BIND."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from deplat import certs
from deplat.cli import run
from deplat.errors import InputError, OperationFailed
from deplat.secrets import SecretStore
from deplat.spec import load_spec
from deplat.spec.model import Spec
from tests.support.bind import Bind
from tests.support.pebble import Pebble

pytestmark = pytest.mark.slow

NAMES = ["guestbook.test", "www.guestbook.test"]
PASSPHRASE = "correct horse battery staple"


def make_spec(tmp_path: Path, ns: Bind, ca: Pebble) -> Spec:
    doc: dict[str, Any] = {
        "version": 1,
        "app": "guestbook",
        "services": {
            "web": {
                "image": "guestbook:1",
                "ports": [{"port": 18080, "public": True}],
                "local": {"command": ["python3", "-m", "http.server", "{port}", "--bind", "{host}"]},
            }
        },
        "domain": {"zone": "guestbook.test", "names": ["www.guestbook.test", "guestbook.test"]},
        "sites": [
            {"name": "local-a", "provider": "local", "role": "primary", "options": {"address": "127.0.0.11"}},
            {"name": "local-b", "provider": "local", "role": "warm", "options": {"address": "127.0.0.12"}},
        ],
        "dns": [ns.dns_entry("ns-a")],
        "certificates": {
            "acme_directory": ca.directory,
            "ca_bundle": str(ca.ca_bundle),
            "propagation_seconds": 0,
        },
    }
    path = tmp_path / "app" / "deplat.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_spec(path)


def secrets_for(spec: Spec, ns: Bind, **extra: str) -> SecretStore:
    return SecretStore(spec, environ={**ns.secret_env(), "DEPLAT_PASSPHRASE": PASSPHRASE, **extra})


def public_key_of(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if "PRIVATE KEY" in pem:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        public = key.public_key()
    else:
        public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_certificate_is_obtained_through_dns01_and_its_key_sealed_on_disk(tmp_path, bind_server, pebble):
    spec = make_spec(tmp_path, bind_server, pebble)
    secrets = secrets_for(spec, bind_server)

    state = certs.ensure(spec, secrets)

    assert state.action == "obtained"
    assert state.info is not None
    assert state.info.names == NAMES
    assert "Pebble" in state.info.issuer
    assert state.info.days_left(state.info.not_before + timedelta(days=1)) > 30
    pair = certs.pem_pair(spec, secrets)
    assert pair is not None
    chain, key = pair
    assert chain.startswith("-----BEGIN CERTIFICATE-----")
    assert public_key_of(chain) == public_key_of(key)
    # the challenge records are gone again
    assert bind_server.query("_acme-challenge.www.guestbook.test", "TXT") == []
    assert bind_server.query("_acme-challenge.guestbook.test", "TXT") == []
    # nothing under .deplat holds a private key in the clear, and every file is owner-only
    stored = files_under(spec.base_dir / ".deplat" / "certs")
    assert stored
    for path in stored:
        text = path.read_text(encoding="utf-8")
        assert "PRIVATE KEY" not in text
        assert key.strip().splitlines()[1] not in text
        assert '"d"' not in text  # the account key's private JWK member
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((spec.base_dir / ".deplat" / "certs").stat().st_mode) == 0o700


def test_fresh_certificate_is_kept_without_asking_the_ca(tmp_path, bind_server, pebble):
    spec = make_spec(tmp_path, bind_server, pebble)
    first = certs.ensure(spec, secrets_for(spec, bind_server))
    pebble.stop()  # any call to the CA would now fail

    again = certs.ensure(spec, secrets_for(spec, bind_server))

    assert again.action == "kept"
    assert again.reason == ""
    assert again.info == first.info


def test_certificate_is_renewed_when_fewer_than_30_days_remain(tmp_path, bind_server, pebble):
    spec = make_spec(tmp_path, bind_server, pebble)
    first = certs.ensure(spec, secrets_for(spec, bind_server))
    assert first.info is not None
    account_file = next((spec.base_dir / ".deplat" / "certs").glob("account-*.json"))
    account_before = json.loads(account_file.read_text())["sealed"]
    later = first.info.not_after - timedelta(days=29)
    assert certs.status(spec, now=later).reason == "29 days left, renewing below 30"

    renewed = certs.ensure(spec, secrets_for(spec, bind_server), now=later)

    assert renewed.action == "renewed"
    assert renewed.info is not None
    assert renewed.info.serial != first.info.serial
    assert renewed.info.names == NAMES
    # the same ACME account (key) was used again: its sealed file is unchanged
    assert json.loads(account_file.read_text())["sealed"] == account_before
    assert renewed.info.not_after >= first.info.not_after
    assert certs.status(spec).reason == ""


def test_wrong_dns_key_fails_naming_the_provider_and_stores_nothing(tmp_path, bind_server, pebble):
    spec = make_spec(tmp_path, bind_server, pebble)
    wrong = base64.b64encode(os.urandom(32)).decode()
    secrets = secrets_for(spec, bind_server, DNS_TSIG_SECRET=wrong)

    with pytest.raises(OperationFailed) as failure:
        certs.ensure(spec, secrets)

    message = failure.value.message
    assert "cannot write the ACME challenge record _acme-challenge." in message
    assert "on DNS provider ns-a" in message
    assert "wrong key in secret DNS_TSIG_SECRET" in message
    assert wrong not in message
    assert certs.status(spec).info is None


def test_certificate_cannot_be_opened_with_another_passphrase(tmp_path, bind_server, pebble):
    spec = make_spec(tmp_path, bind_server, pebble)
    certs.ensure(spec, secrets_for(spec, bind_server))
    from deplat.engine import passphrase

    passphrase.forget()

    with pytest.raises(InputError, match="wrong state passphrase"):
        certs.pem_pair(spec, secrets_for(spec, bind_server, DEPLAT_PASSPHRASE="not the one"))


def test_certs_command_shows_names_issuer_and_expiry_but_never_the_key(
    tmp_path, bind_server, pebble, monkeypatch, capsys
):
    spec = make_spec(tmp_path, bind_server, pebble)
    for name, value in {**bind_server.secret_env(), "DEPLAT_PASSPHRASE": PASSPHRASE}.items():
        monkeypatch.setenv(name, value)
    path = str(spec.source)

    assert run(["-f", path, "--json", "certs"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["action"] == "obtained"
    assert document["certificate"]["names"] == NAMES
    assert document["days_left"] > 30

    assert run(["-f", path, "certs", "--check"]) == 0
    shown = capsys.readouterr()
    assert "www.guestbook.test" in shown.out
    assert "Pebble" in shown.out
    assert "days left" in shown.out
    key = certs.pem_pair(spec, secrets_for(spec, bind_server))[1]  # type: ignore[index]
    for text in (shown.out, shown.err, json.dumps(document)):
        assert "PRIVATE KEY" not in text
        assert key.strip().splitlines()[1] not in text
