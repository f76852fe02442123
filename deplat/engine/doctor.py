"""``deplat doctor``: is this machine ready to run the spec's sites? Every check is data, never printed.

Checks: the ``pulumi`` CLI (present, version), each cloud provider's plugin (installed at the version
its SDK wants), each cloud site's credentials as ``(ok, reason)`` from its provider module (with
``accounts``, also the provider's answer to one read-only API call: suspended, billing off, API off),
and the state backend (a writable directory for ``file://``). ``install_pulumi`` runs Pulumi's own installer
(``PulumiCommand.install``, into ``~/.pulumi/versions/<sdk version>``); the CLI asks for consent.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.errors import OperationFailed
from deplat.events import Emit, Event, EventKind, discard

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec


@dataclass
class Check:
    name: str  # e.g. "pulumi CLI", "plugin aws", "credentials aws-fra", "state backend"
    ok: bool
    detail: str
    hint: str | None = None
    required: bool = True  # False: worth knowing, but `up` copes (e.g. it downloads a missing plugin)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_cli() -> tuple[Check, str | None]:
    """The CLI check, and the executable's path when usable."""
    from deplat.engine.workspace import INSTALL_HINT, find_pulumi

    path = find_pulumi()
    if path is None:
        return Check("pulumi CLI", False, "not found on PATH or in ~/.pulumi", INSTALL_HINT), None
    try:
        done = subprocess.run(
            [path, "version"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("pulumi CLI", False, f"{path} does not run: {exc}", INSTALL_HINT), None
    if done.returncode != 0:
        return Check("pulumi CLI", False, f"`{path} version` exited {done.returncode}", INSTALL_HINT), None
    return Check("pulumi CLI", True, f"{done.stdout.strip()} at {path}"), path


def installed_plugins(path: str) -> set[tuple[str, str]]:
    done = subprocess.run(
        [path, "plugin", "ls", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
    )
    if done.returncode != 0:
        raise OperationFailed(f"`pulumi plugin ls` failed: {done.stderr.strip()}")
    listed = json.loads(done.stdout or "[]")
    return {(p.get("name", ""), str(p.get("version") or "").lstrip("v")) for p in listed}


def check_backend(spec: Spec) -> Check:
    from deplat.paths import ProjectPaths

    paths = ProjectPaths.of(spec)
    folder = paths.state_backend_dir
    if folder is None:
        return Check("state backend", True, f"{paths.state_backend_url} (not checked: a remote backend)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deplat-doctor-"):
            pass
    except OSError as exc:
        detail = f"{folder} is not writable: {exc.strerror}"
        return Check("state backend", False, detail, "fix its permissions")
    return Check("state backend", True, f"{folder} is writable")


ACCOUNT_HINTS = {
    "suspended": "the provider cut this account (or its billing) off: `deplat failover` moves the app away",
    "forbidden": "the credentials work but may not do this: grant the permissions, or turn the API on",
    "transient": "the provider's API did not answer: try again",
}


def check_account(spec: Spec, site: Any, provider: Any, secrets: SecretStore, timeout: float = 5.0) -> Check:
    """One read-only call to the provider's API (its control-plane check): is the account usable,
    its billing on, its API turned on?"""
    try:
        ok, reason, kind = provider.control_plane_check(site, spec, secrets, timeout)
    except Exception as exc:
        ok, reason, kind = False, f"check failed: {type(exc).__name__}: {exc}", None
    hint = None if ok else ACCOUNT_HINTS.get(str(kind or ""))
    return Check(f"account {site.name}", bool(ok), secrets.masker.text(str(reason)), hint)


def run_checks(spec: Spec, secrets: SecretStore, *, accounts: bool = False) -> list[Check]:
    """``accounts``: also ask each cloud site's provider API (one read-only call per site whose
    credentials are there) whether the account, its billing and its API are on."""
    from deplat.engine import driver
    from deplat.engine.driver import required_plugins

    cloud = [s for s in spec.sites if driver.site_provider(s).capabilities.pulumi_program]
    checks: list[Check] = []
    cli, path = check_cli()
    if cloud or not cli.ok:
        cli.required = bool(cloud)  # local sites need no engine
        checks.append(cli)
    plugins: set[tuple[str, str]] | None = None
    if path is not None and cloud:
        try:
            plugins = installed_plugins(path)
        except (OperationFailed, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            checks.append(Check("plugins", False, f"could not list plugins: {exc}"))
    seen: set[str] = set()
    for site in cloud:
        provider = driver.site_provider(site)
        if plugins is not None and site.provider.value not in seen:
            seen.add(site.provider.value)
            try:
                wanted = required_plugins(provider)
            except LookupError as exc:  # the provider's SDK is not installed
                checks.append(Check(f"provider {site.provider.value}", False, str(exc)))
                continue
            for name, version in wanted:
                ok = (name, version) in plugins
                missing = f"v{version} not installed (the first `up` downloads it)"
                hint = (
                    None if ok else f"offline: pulumi plugin install resource {name} v{version} --file X.tgz"
                )
                checks.append(
                    Check(f"plugin {name}", ok, f"v{version} installed" if ok else missing, hint, False)
                )
        try:
            ok, reason = provider.check_credentials(site, secrets, spec_dir=spec.base_dir)
        except Exception as exc:
            ok, reason = False, f"check failed: {type(exc).__name__}: {exc}"
        checks.append(Check(f"credentials {site.name}", bool(ok), secrets.masker.text(str(reason))))
        if accounts and ok:
            checks.append(check_account(spec, site, provider, secrets))
    checks.append(check_backend(spec))
    return checks


def install_pulumi(emit: Emit = discard) -> str:
    """Install the CLI with Pulumi's installer; returns its path. Offline: ``OperationFailed``."""
    import urllib.error

    from pulumi import automation as auto
    from pulumi._version import version as sdk_version

    root = Path.home() / ".pulumi" / "versions" / str(sdk_version)
    emit(
        Event(
            EventKind.DOCTOR_INSTALL,
            f"downloading https://get.pulumi.com/install.sh, installing v{sdk_version} into {root}",
        )
    )
    try:
        command = auto.PulumiCommand.install(root=str(root))
    except urllib.error.URLError as exc:
        raise OperationFailed(
            f"could not download the Pulumi installer (offline?): {exc.reason}",
            hint="on a machine with internet: curl -fsSL https://get.pulumi.com | sh, then copy ~/.pulumi",
        ) from None
    except (subprocess.CalledProcessError, OSError) as exc:
        raise OperationFailed(f"the Pulumi installer failed: {exc}") from None
    emit(Event(EventKind.DOCTOR_INSTALL, f"installed {command.command} (v{command.version})"))
    return command.command
