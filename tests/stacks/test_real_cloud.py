"""Opt-in: a real `pulumi preview` of each example cloud site, where the CLI and credentials exist.

Run with ``DEPLAT_CLOUD_TESTS=1 python -m pytest -m cloud tests/stacks``; needs the ``pulumi`` CLI on
PATH, the provider plugins (or network to fetch them), the credentials each provider's
``check_credentials`` looks for, the app's secrets (GUESTBOOK_ADMIN_TOKEN) and DEPLAT_PASSPHRASE for
the state. A preview creates nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from deplat import providers
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec

pytestmark = [pytest.mark.cloud, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("site_name", ["aws-fra", "hetzner-fsn", "gcp-ew"])
def test_real_preview_of_an_example_cloud_site(site_name: str, tmp_path: Path) -> None:
    if os.environ.get("DEPLAT_CLOUD_TESTS") != "1":
        pytest.skip("real-cloud tests run only with DEPLAT_CLOUD_TESTS=1")
    if shutil.which("pulumi") is None:
        pytest.skip("the pulumi CLI is not on PATH")
    path = tmp_path / "deplat.yaml"
    shutil.copy(ROOT / "examples/cloud/deplat.yaml", path)
    spec = load_spec(path)
    site = spec.site(site_name)
    secrets = SecretStore(spec)
    ok, reason = providers.get(site.provider.value).check_credentials(site, secrets)
    if not ok:
        pytest.skip(f"no credentials for {site_name}: {reason}")
    from deplat.operations import preview_sites

    [result] = preview_sites(spec, [site], secrets)
    assert result.ok, result.error
    assert result.changes.get("create", 0) >= 6
