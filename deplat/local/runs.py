"""What a local site runs: each service's ``local`` section turned into argv, cwd and environment.

Placeholders in the command and in env values: ``{host}`` (the site's loopback address), ``{port}``
(the service's first port), ``{data_dir}`` (its data dir on this site), ``{site}`` (the site's name).
The environment is, later entries winning: a few variables inherited from whoever runs deplat
(``BASE_ENV_KEYS``: PATH, HOME, locale, ... and nothing else, so unrelated credentials in the caller's
environment do not leak into the app), the service's ``env``, its ``local.env``, its secrets (values
from ``SecretStore``), and ``DEPLAT_SITE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import InputError
from deplat.local import sitestate
from deplat.paths import local_site_dir
from deplat.providers.local import address

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Service, Site, Spec

BASE_ENV_KEYS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders; any other brace is left as it is (no str.format surprises)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def service_port(service: Service) -> int:
    return service.ports[0].port


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def service_run(
    spec: Spec,
    site: Site,
    name: str,
    service: Service,
    secrets: SecretStore,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The supervisor's instructions for one service (secret values in ``env``, named in ``secret_keys``)."""
    local = service.local
    if local is None or not service.ports:
        raise InputError(
            f"service {name} cannot run on local site {site.name}: it needs a 'local' section and a port"
        )
    site_dir = local_site_dir(spec, site.name).resolve()
    values = {
        "host": address(site, spec),
        "port": str(service_port(service)),
        "data_dir": str(sitestate.data_dir(site_dir, name)),
        "site": site.name,
    }
    cwd = (spec.base_dir / local.cwd).resolve() if local.cwd else spec.base_dir.resolve()
    if not cwd.is_dir():
        raise InputError(f"services.{name}.local.cwd: {cwd} is not a directory")
    env = {k: fill(v, values) for k, v in {**service.env, **local.env}.items()}
    for secret in service.secrets:
        env[secret] = secrets.require(secret, f"service {name}")
    env["DEPLAT_SITE"] = site.name
    source = os.environ if environ is None else environ
    return {
        "argv": [fill(arg, values) for arg in local.command],
        "cwd": str(cwd),
        "env": env,
        "base_env": {k: source[k] for k in BASE_ENV_KEYS if k in source},
        "secret_keys": list(service.secrets),
        "log": str(sitestate.log_path(site_dir, name)),
        "data_dir": values["data_dir"],
    }


def site_runs(
    spec: Spec, site: Site, secrets: SecretStore, environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every service of the app, as it runs on ``site``."""
    return {name: service_run(spec, site, name, svc, secrets, environ) for name, svc in spec.services.items()}


def site_outputs(spec: Spec, site: Site) -> dict[str, Any]:
    """What ``up`` and ``status`` report: the site's address, its URL, each service's port."""
    host = address(site, spec)
    ports = {name: service_port(svc) for name, svc in spec.services.items() if svc.ports}
    public = [p for svc in spec.services.values() for p in svc.public_ports]
    port = public[0] if public else next(iter(ports.values()), None)
    outputs: dict[str, Any] = {"ipv6" if ":" in host else "ipv4": host, "ports": ports}
    if port is not None:
        outputs["url"] = f"http://{url_host(host)}:{port}/"
    return outputs


def data_dirs(spec: Spec, site: Site) -> dict[str, Path]:
    site_dir = local_site_dir(spec, site.name)
    return {name: sitestate.data_dir(site_dir, name) for name in spec.services}
