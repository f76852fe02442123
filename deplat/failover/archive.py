"""Archiving a fenced site's state, from local files or the state backend (never its provider's API).

A local site's state files are copied; a Pulumi site's stack is exported through the engine
(``pulumi stack export`` reads the state backend only), else the embedded file backend's checkpoint
is copied as it is. Best effort: the failover is already done when this runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.files import private_dir, write_json_atomic
from deplat.paths import paths
from deplat.providers import provider_of
from deplat.spec.model import Site, Spec

if TYPE_CHECKING:
    from deplat.secrets import SecretStore


def archive_site_state(spec: Spec, site: str, tag: str, secrets: SecretStore | None = None) -> dict[str, Any]:
    """Archive a left site's state under ``.deplat/archive/<site>-<tag>/``; says what was kept."""
    project = paths(spec)
    target = project.archive(site, tag)
    site_obj = spec.site(site)
    if provider_of(site_obj).capabilities.runs_locally:
        source = project.local_site(site)
        copied: list[str] = []
        if source.is_dir():
            private_dir(target)
            for path in sorted(source.glob("*.json")):
                shutil.copy2(path, target / path.name)
                copied.append(path.name)
        return {"kind": "local", "path": str(target), "files": copied}
    exported, why = _engine_export(spec, site_obj, secrets, target)
    if exported is not None:
        return {"kind": "pulumi", "path": str(target), "files": [exported.name], "via": "pulumi stack export"}
    backend = project.state_backend_dir
    if backend is None:
        return {
            "kind": "pulumi",
            "path": None,
            "note": f"not archived ({why}); state in {project.state_backend_url}: "
            "run `pulumi stack export` later",
        }
    found = sorted((backend / ".pulumi" / "stacks").glob(f"**/{site}.json*"))
    config = project.pulumi_workspace(site)
    if found or config.is_dir():
        private_dir(target)
    for path in found:
        shutil.copy2(path, target / path.name)
    if config.is_dir():
        shutil.copytree(config, target / "workspace", dirs_exist_ok=True)
    return {
        "kind": "pulumi",
        "path": str(target) if found else None,
        "files": [p.name for p in found],
        "via": "file backend copy",
        "note": why,
    }


def _engine_export(
    spec: Spec, site: Site, secrets: SecretStore | None, target: Path
) -> tuple[Path | None, str]:
    """``pulumi stack export`` of the site's stack into ``target``; (None, why) when it cannot run."""
    try:
        from deplat.engine import passphrase, workspace
    except ImportError:
        return None, "no engine"
    if secrets is None:
        return None, "no secrets store"
    if workspace.find_pulumi() is None:
        return None, "no pulumi CLI"
    try:
        phrase = passphrase.resolve(spec, secrets)
        stack = workspace.open_stack(spec, site, phrase, create=False)
        deployment = stack.export_stack()
    except Exception as exc:  # best effort: the failover itself is already done
        return None, secrets.masker.text(f"export failed: {type(exc).__name__}: {exc}")[:300]
    path = private_dir(target) / f"{site.name}.export.json"
    write_json_atomic(path, {"version": deployment.version, "deployment": deployment.deployment})
    return path, ""
