"""Every file in bad/ is named after the failure it triggers; each gives exactly these problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from deplat.cli import run
from deplat.errors import SpecError
from deplat.spec import load_spec

BAD = Path(__file__).parent / "bad"

EXPECTED = {
    "duplicate-key.yaml": [
        "duplicate-key.yaml:3:1: app: duplicate key 'app'",
    ],
    "duplicate-site-names.yaml": [
        "duplicate-site-names.yaml:17:11: sites[1].name: duplicate name 'aws-a' in sites",
    ],
    "empty-file.yaml": [
        "empty-file.yaml:1:1: a spec is a mapping of keys (app, services, domain, sites, ...), not an empty file",
    ],
    "health-port-not-declared.yaml": [
        "health-port-not-declared.yaml:8:20: services.web.health.port: health port 9090 is not one of the service's ports (8080)",
    ],
    "invalid-yaml.yaml": [
        "invalid-yaml.yaml:6:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 5, column 12)",
    ],
    "local-address-not-loopback.yaml": [
        "local-address-not-loopback.yaml:14:68: sites[1].options.address: '10.0.0.22' is not a loopback address (127.0.0.0/8 or ::1)",
    ],
    "local-site-without-local-command.yaml": [
        "local-site-without-local-command.yaml:5:5: services.web: has no 'local' section, but site 'here-a' is local: say how to run it on this machine",
    ],
    "many-problems-at-once.yaml": [
        "many-problems-at-once.yaml:2:6: app: should be lower-case letters, digits and '-', starting with a letter and at most 42 long (got 'Shop')",
        "many-problems-at-once.yaml:7:30: services.web.ports[0].public: should be true or false (got 'yes-please')",
        "many-problems-at-once.yaml:8:5: services.web.helth: unknown key 'helth' (did you mean 'health'?)",
        "many-problems-at-once.yaml:20:19: failover.probe_interval: should be greater than 0",
    ],
    "missing-image.yaml": [
        "missing-image.yaml:5:5: services.web: missing required key 'image'",
    ],
    "name-outside-zone.yaml": [
        "name-outside-zone.yaml:11:29: domain.names[1]: 'shop.example.net' is not inside the zone 'shop.example.com'",
    ],
    "no-primary.yaml": [
        "no-primary.yaml:13:3: sites: no site has role 'primary'; exactly one must",
    ],
    "only-a-primary.yaml": [
        "only-a-primary.yaml:13:3: sites: only the primary 'aws-a' is declared: add a warm or cold standby on another provider, else failing over is impossible",
    ],
    "port-not-a-number.yaml": [
        "port-not-a-number.yaml:7:16: services.web.ports[0].port: should be a whole number (got 'http')",
    ],
    "port-out-of-range.yaml": [
        "port-out-of-range.yaml:7:16: services.web.ports[0].port: should be less than or equal to 65535",
        "port-out-of-range.yaml:8:20: services.web.health.port: should be less than or equal to 65535",
    ],
    "secret-name-lowercase.yaml": [
        "secret-name-lowercase.yaml:6:15: services.web.secrets[0]: should be an environment variable name such as DB_PASSWORD (got 'db_password')",
    ],
    "service-name-uppercase.yaml": [
        "service-name-uppercase.yaml:4:3: services.Web: invalid name 'Web': should be lower-case letters, digits and '-', starting with a letter and at most 42 long",
    ],
    "standbys-on-primarys-provider.yaml": [
        "standbys-on-primarys-provider.yaml:13:3: sites: every standby is on 'aws', like the primary: when that provider suspends the account failing over is impossible; add a standby on another provider",
    ],
    "top-level-list.yaml": [
        "top-level-list.yaml:1:1: a spec is a mapping of keys (app, services, domain, sites, ...), not a list",
    ],
    "ttl-zero.yaml": [
        "ttl-zero.yaml:12:8: domain.ttl: should be greater than or equal to 1",
    ],
    "two-primaries.yaml": [
        "two-primaries.yaml:19:11: sites[1].role: a second primary ('hetzner-b'); exactly one site may be primary, 'aws-a' already is",
    ],
    "unknown-key-did-you-mean.yaml": [
        "unknown-key-did-you-mean.yaml:5:5: services.web.imgae: unknown key 'imgae' (did you mean 'image'?)",
    ],
    "unknown-provider.yaml": [
        "unknown-provider.yaml:18:15: sites[1].provider: 'azure' is not one of 'aws', 'gcp', 'hcloud' or 'local'",
    ],
    "unknown-role.yaml": [
        "unknown-role.yaml:19:11: sites[1].role: 'hot' is not one of 'primary', 'warm' or 'cold'",
    ],
}


def test_every_bad_spec_has_an_expectation() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_spec_reports_exact_problems_with_file_and_line(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    with pytest.raises(SpecError) as caught:
        load_spec(name)
    assert [str(p) for p in caught.value.problems] == EXPECTED[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_spec_exits_2_with_every_problem_and_no_traceback(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BAD)
    assert run(["--no-color", "-f", name, "validate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in EXPECTED[name]:
        assert line in err
