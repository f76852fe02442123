"""One Pulumi stack per site, in a workspace deplat owns: the only importer of ``pulumi.automation``.

- project: the app's name; stack: the site's name; inline program (nothing on disk to keep in sync).
- work dir: ``.deplat/pulumi/<site>/`` (holds ``Pulumi.yaml`` and ``Pulumi.<site>.yaml``, i.e. the
  stack's config and its ``encryptionsalt``), so sites never share a config file.
- backend: ``deplat.paths.state_backend_url`` (default ``file://<spec dir>/.deplat/state``), written to
  ``Pulumi.yaml`` and also set as ``PULUMI_BACKEND_URL`` so that a user's own setting can't redirect it.
- secrets provider: ``passphrase``; the passphrase reaches the CLI in its environment only.
- config: set from the spec on every run. Plain values go through ``config set-all``; secret values
  through ``config set --secret KEY`` with the value on stdin, so that no secret is ever an argument.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deplat.errors import InputError, OperationFailed
from deplat.files import private_dir
from deplat.paths import ProjectPaths, home, state_backend_url

if TYPE_CHECKING:
    from pulumi import automation as auto

    from deplat.spec.model import Site, Spec

INSTALL_HINT = (
    "install it with `deplat doctor --install-pulumi` (Pulumi's own installer), or see "
    "https://www.pulumi.com/docs/install/"
)

# Inline programs under refresh and destroy need `--client` (CLI 3.181); an older CLI would fail there
# with the SDK's InvalidVersionError, after `up` had worked. Refuse it up front instead.
MINIMUM_CLI = "3.181.0"

ConfigMap = Mapping[str, tuple[str, bool]]  # key -> (value, is_secret)

_command_lock = threading.Lock()
_commands: dict[str, Any] = {}


def stack_name(site: Site) -> str:
    return site.name


def work_dir(spec: Spec, site: Site) -> Path:
    return home(spec) / "pulumi" / site.name


def installed_roots() -> list[Path]:
    """Where ``PulumiCommand.install()`` and Pulumi's installer put the CLI, newest SDK first."""
    from pulumi._version import version as sdk_version

    base = Path.home() / ".pulumi"
    return [base / "versions" / str(sdk_version), base]


def find_pulumi() -> str | None:
    """The ``pulumi`` executable deplat will run: PATH first, then the installer's locations."""
    found = shutil.which("pulumi")
    if found:
        return found
    for root in installed_roots():
        candidate = root / "bin" / "pulumi"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_cli_error() -> InputError:
    return InputError("the `pulumi` CLI is not installed (cloud sites need it)", hint=INSTALL_HINT)


def pulumi_command() -> auto.PulumiCommand:
    """A ``PulumiCommand`` for the CLI found by ``find_pulumi`` (its version is checked once)."""
    from pulumi import automation as auto
    from semver import VersionInfo

    path = find_pulumi()
    if path is None:
        raise missing_cli_error()
    with _command_lock:
        if path not in _commands:
            root = None if shutil.which("pulumi") == path else str(Path(path).parent.parent)
            try:
                minimum = VersionInfo.parse(MINIMUM_CLI)
                _commands[path] = auto.PulumiCommand(root=root, version=minimum)
            except FileNotFoundError:
                raise missing_cli_error() from None
            except auto.InvalidVersionError as exc:
                raise InputError(
                    f"the `pulumi` CLI at {path} can't be used: {exc}", hint=INSTALL_HINT
                ) from None
            except subprocess.CalledProcessError as exc:
                raise InputError(
                    f"`{path} version` failed (exit {exc.returncode})", hint=INSTALL_HINT
                ) from None
        return _commands[path]


def engine_env(spec: Spec, passphrase: str) -> dict[str, str]:
    """The environment every CLI call of this spec gets (on top of the process's own)."""
    return {
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_BACKEND_URL": state_backend_url(spec),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }


def ensure_backend(spec: Spec) -> None:
    folder = ProjectPaths.of(spec).state_backend_dir
    if folder is not None:
        private_dir(folder)


def workspace(
    spec: Spec, site: Site, passphrase: str, program: Callable[[], None] | None = None
) -> auto.LocalWorkspace:
    from pulumi import automation as auto

    command = pulumi_command()
    ensure_backend(spec)
    folder = work_dir(spec, site)
    folder.mkdir(parents=True, exist_ok=True)
    settings = auto.ProjectSettings(
        name=spec.app,
        runtime="python",
        main=str(folder),
        backend=auto.ProjectBackend(url=state_backend_url(spec)),
    )
    try:
        return auto.LocalWorkspace(
            work_dir=str(folder),
            program=program,
            env_vars=engine_env(spec, passphrase),
            secrets_provider="passphrase",
            project_settings=settings,
            pulumi_command=command,
        )
    except FileNotFoundError:
        raise missing_cli_error() from None


def open_stack(
    spec: Spec,
    site: Site,
    passphrase: str,
    program: Callable[[], None] | None = None,
    *,
    create: bool = True,
) -> auto.Stack:
    """Select the site's stack (creating it when ``create``); ``StackNotFoundError`` otherwise."""
    from pulumi import automation as auto

    ws = workspace(spec, site, passphrase, program)
    if create:
        return auto.Stack.create_or_select(stack_name(site), ws)
    return auto.Stack.select(stack_name(site), ws)


def set_config(stack: auto.Stack, config: ConfigMap) -> None:
    """Make the stack's config exactly ``config``: stale keys dropped, secrets never in argv."""
    from pulumi import automation as auto

    _prune_config(stack, set(config))
    plain = {
        k: auto.ConfigValue(value=str(v), secret=False) for k, (v, secret) in config.items() if not secret
    }
    if plain:
        stack.set_all_config(plain)
    for key, (value, secret) in config.items():
        if secret:
            set_secret_config(stack, key, str(value))


def _prune_config(stack: auto.Stack, keep: set[str]) -> None:
    path = Path(stack.workspace.work_dir) / f"Pulumi.{stack.name}.yaml"
    if not path.exists():
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = data.get("config") or {}
    stale = [k for k in config if k not in keep]
    if stale:
        for key in stale:
            del config[key]
        path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")


def set_secret_config(stack: auto.Stack, key: str, value: str) -> None:
    """``pulumi config set --secret KEY`` with the value on stdin (the CLI reads it when not interactive)."""
    ws = stack.workspace
    command = ws.pulumi_command.command
    env = {**os.environ, **ws.env_vars, "PULUMI_AUTOMATION_API": "true"}
    args = [command, "--non-interactive", "config", "set", key, "--secret", "--stack", stack.name]
    try:
        done = subprocess.run(
            args, input=value, cwd=ws.work_dir, env=env, capture_output=True, text=True, timeout=120
        )
    except FileNotFoundError:
        raise missing_cli_error() from None
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"setting config {key} of stack {stack.name} timed out") from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout).replace(value, "********") if value else done.stderr
        raise OperationFailed(f"setting config {key} of stack {stack.name} failed: {text.strip()}")


def export_stack_file(spec: Spec, site: Site, passphrase: str, dest: Path) -> Path:
    """``pulumi stack export`` of the site's stack into the file ``dest``, secrets left encrypted.

    The Automation API's ``export_stack`` always passes ``--show-secrets``: its result would carry
    every secret in plain text. This runs the CLI itself, without it. Reads the state backend only
    (no plugin, no provider API). Raises ``OperationFailed`` when the CLI fails."""
    ws = workspace(spec, site, passphrase)
    command = ws.pulumi_command.command
    env = {**os.environ, **ws.env_vars, "PULUMI_AUTOMATION_API": "true"}
    args = [command, "--non-interactive", "stack", "export", "--stack", stack_name(site), "--file", str(dest)]
    try:
        done = subprocess.run(args, cwd=ws.work_dir, env=env, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise missing_cli_error() from None
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"exporting the state of {site.name} timed out") from None
    if done.returncode != 0:
        raise OperationFailed(
            f"exporting the state of {site.name} failed: {(done.stderr or done.stdout).strip()}"
        )
    return dest


def _run(stack: auto.Stack, args: list[str]) -> auto.CommandResult:
    ws = stack.workspace
    env = {**({"PULUMI_HOME": ws.pulumi_home} if ws.pulumi_home else {}), **ws.env_vars}
    return ws.pulumi_command.run(args, ws.work_dir, env)


def import_state(stack: auto.Stack, state: Mapping[str, Any]) -> None:
    """``pulumi stack import`` of an ``export_stack_file`` export (through a private temporary file).

    The state keeps its own secrets provider: it imports into a stack created anew (a new salt), as
    long as the passphrase is the same. It must be the same stack name (the CLI refuses resources
    "from a different stack")."""
    folder = Path(stack.workspace.work_dir)
    fd, name = tempfile.mkstemp(prefix=".import-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(dict(state), file)
        _run(stack, ["stack", "import", "--file", name, "--stack", stack.name])
    finally:
        Path(name).unlink(missing_ok=True)


def installed_plugins(stack: auto.Stack) -> set[tuple[str, str]]:
    """(name, version without "v") of the installed plugins.

    Not ``LocalWorkspace.list_plugins()``: it raises KeyError when ``plugin ls --json`` leaves out
    ``lastUsedTime``, which the CLI does when it cannot stat a plugin's directory (the field is
    ``omitempty``), e.g. while a parallel run is installing it.
    """
    listed = json.loads(_run(stack, ["plugin", "ls", "--json"]).stdout or "[]") or []
    return {(str(p.get("name", "")), str(p.get("version") or "").lstrip("v")) for p in listed}
