"""Importing the provider modules, the DNS backends, the site program and the plan costs no SDK
import (the vendors' clients, hcloud and google-cloud-dns, load only when a call is made)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_provider_modules_import_no_pulumi_sdk() -> None:
    code = (
        "import sys\n"
        "import deplat.providers.aws, deplat.providers.gcp, deplat.providers.hcloud\n"
        "import deplat.stacks.site, deplat.stacks.bootstrap, deplat.plan, deplat.cli\n"
        "import deplat.hetzner, deplat.dns.hcloud, deplat.dns.clouddns\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'pulumi', 'pulumi_aws', 'pulumi_gcp', "
        "'pulumi_hcloud', 'boto3', 'hcloud', 'requests'} or m.startswith('google.cloud'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
