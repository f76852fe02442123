"""``PulumiDriver``: a cloud site through the Automation API (implements ``deplat.sites.SiteDriver``).

Each call opens the site's own stack (``deplat.engine.workspace``), sets its config from the spec,
runs one engine operation with events translated to deplat ``Event``s, and returns a ``SiteResult``
whose error, if any, is classified (``deplat.engine.errors``) and masked. Nothing here raises for a
failed site: the caller runs many sites and one failure must never abort the others. Only errors
the user must fix before anything can run (no ``pulumi`` CLI, no passphrase) are raised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deplat.engine import locks, passphrase
from deplat.engine import workspace as wsp
from deplat.engine.errors import EngineFailure, classify
from deplat.engine.events import EventTranslator
from deplat.errors import DeplatError, ErrorClass, InputError
from deplat.events import Emit, Event, EventKind, discard
from deplat.files import private_dir, write_bytes_atomic
from deplat.paths import file_backend_dir, state_backend_url
from deplat.secrets import MASK
from deplat.site_results import Addresses, SiteResult, SiteStatus

if TYPE_CHECKING:
    from pulumi import automation as auto

    from deplat.providers.base import HostingProvider
    from deplat.remote import Layout, RemoteSite
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec


def site_provider(site: Site) -> HostingProvider:
    """The site's provider (a seam: engine tests put a stand-in provider here)."""
    from deplat.providers import provider_of

    return provider_of(site)


def site_program(
    spec: Spec, site: Site, secrets: SecretStore, *, purge_data: bool = False, renew_vm: bool = False
) -> Callable[[], None]:
    from deplat.stacks.site import program

    return program(spec, site, secrets, purge_data=purge_data, renew_vm=renew_vm)


class _SiteFailed(Exception):
    def __init__(self, failure: EngineFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class PulumiDriver:
    """Stand up, inspect and take down cloud sites; one instance may serve many sites and threads."""

    def __init__(self, spec: Spec, secrets: SecretStore, layout: Layout | None = None) -> None:
        self.spec = spec
        self.secrets = secrets
        self.layout = layout  # where things are on the sites' VMs (None: the bootstrap's; tests: a folder)

    # ------------------------------------------------------------------ SiteDriver

    def up(self, site: Site, emit: Emit = discard, *, replace_vm: bool = False) -> SiteResult:
        """``replace_vm``: a new VM (today's image and bootstrap) in place of the old one, deleted
        first; its volume is attached to the new one and its address follows it."""
        return self._operate(site, "up", emit, replace_vm=replace_vm)

    def preview(self, site: Site, emit: Emit = discard, *, replace_vm: bool = False) -> SiteResult:
        return self._operate(site, "preview", emit, replace_vm=replace_vm)

    def refresh(self, site: Site, emit: Emit = discard) -> SiteResult:
        return self._operate(site, "refresh", emit)

    def destroy(self, site: Site, emit: Emit = discard, purge: bool = False) -> SiteResult:
        """Delete the site's resources. Its data (``deplat.stacks.site.kept_on_destroy``) is kept in
        the account and forgotten, unless ``purge``: then an ``up`` targeting the data first drops
        its ``retain_on_delete`` (and lets buckets go with their objects), and the destroy deletes it.
        The result's ``kept`` / ``deleted`` name the data."""
        return self._operate(site, "destroy", emit, purge=purge)

    def status(self, site: Site) -> SiteStatus:
        from pulumi import automation as auto

        from deplat.state import load_active

        role = load_active(self.spec).role_of(self.spec, site.name)
        base = SiteStatus(
            site=site.name, provider=site.provider.value, role=role, exists=False, running=False
        )
        try:
            stack = wsp.open_stack(self.spec, site, self._passphrase(), create=False)
        except auto.StackNotFoundError:
            return base
        except auto.CommandError as exc:
            failure = classify([str(exc)], self._classifier(site), self._mask)
            base.detail = {"error": failure.message, "error_class": failure.error_class}
            return base
        base.exists = True
        try:
            base.outputs = self._outputs(stack.outputs())
            history = stack.history(page_size=1, show_secrets=False)
        except auto.CommandError as exc:
            failure = classify([str(exc)], self._classifier(site), self._mask)
            base.detail = {"error": failure.message, "error_class": failure.error_class}
            return base
        if history:
            last = history[0]
            end = last.end_time or last.start_time
            base.last_update = end.replace(tzinfo=UTC).timestamp() if end else None
            base.detail = {
                "last_operation": last.kind,
                "last_result": last.result,
                "resource_changes": dict(last.resource_changes or {}),
            }
            base.running = bool(base.outputs) and last.result == "succeeded" and last.kind != "destroy"
        held = locks.find_locks(self.spec, wsp.stack_name(site))
        if held:
            base.detail["locks"] = [lock.describe() for lock in held]
        return base

    def addresses(self, site: Site) -> Addresses:
        outputs = self.status(site).outputs
        return Addresses(ipv4=_as_list(outputs.get("ipv4")), ipv6=_as_list(outputs.get("ipv6")))

    def remote(self, site: Site) -> RemoteSite:
        """The site's VM over SSH (``deplat.remote``): its address from the stack's outputs, where
        things are on it from ``self.layout``. Close it when done."""
        from deplat.remote import endpoint_of, open_site

        endpoint = endpoint_of(site, self.status(site).outputs)
        return open_site(self.spec, site, self.secrets, endpoint=endpoint, layout=self.layout)

    def restart(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Restart ``services`` on the site's VM (systemctl over SSH); returns the ones that are
        healthy (checked on the VM) within ``timeout`` seconds."""
        from deplat.remote import services as units

        with self.remote(site) as vm:
            return units.restart(vm, self.spec, services, timeout)

    def stop(self, site: Site, services: list[str], timeout: float) -> list[str]:
        """Stop ``services`` on the site's VM (systemctl over SSH); returns the ones stopped."""
        from deplat.remote import services as units

        with self.remote(site) as vm:
            return units.stop(vm, services, timeout)

    def archive_state(self, site: Site, dest: Path) -> dict[str, Any]:
        """The site's stack state into ``dest`` (owner-only), from the state backend only.

        ``pulumi stack export`` without ``--show-secrets`` (secrets stay ciphertext); when the CLI
        or the passphrase is missing, the file backend's checkpoint and the stack's config file are
        copied as they are (their secrets are encrypted too). A remote backend is then only noted.
        """
        private_dir(dest)
        try:
            exported = wsp.export_stack_file(
                self.spec, site, self._passphrase(), dest / f"{site.name}.export.json"
            )
            exported.chmod(0o600)
            return {
                "kind": "pulumi",
                "path": str(dest),
                "files": [exported.name],
                "via": "pulumi stack export",
            }
        except DeplatError as exc:
            why = self._mask(exc.message)[:300]
        url = state_backend_url(self.spec)
        backend = file_backend_dir(url)
        if backend is None:
            return {"kind": "pulumi", "path": None, "note": f"not archived ({why}); state in {url}"}
        found = sorted((backend / ".pulumi" / "stacks").glob(f"*/{wsp.stack_name(site)}.json*"))
        found += sorted(wsp.work_dir(self.spec, site).glob(f"Pulumi.{wsp.stack_name(site)}.yaml"))
        for path in found:
            write_bytes_atomic(dest / path.name, path.read_bytes())
        return {
            "kind": "pulumi",
            "path": str(dest) if found else None,
            "files": [p.name for p in found],
            "via": "file backend copy",
            "note": why,
        }

    # ------------------------------------------------------------------ one operation

    def _operate(
        self, site: Site, operation: str, emit: Emit, *, purge: bool = False, replace_vm: bool = False
    ) -> SiteResult:
        from pulumi import automation as auto

        from deplat.stacks.site import data_urns, kept_on_destroy, urn

        started = time.monotonic()
        translator = EventTranslator(site.name, emit, self._mask)
        result = SiteResult(site=site.name, operation=operation, ok=False)
        try:
            self._check_locks(site)
            emit(Event(EventKind.SITE_OP, f"{operation}: preparing", site=site.name, data={"op": "prepare"}))
            self._check_credentials(site)
            # every operation gets the inline program: the engine then never looks for one on disk
            wanted = {"purge_data": purge, "renew_vm": replace_vm}
            program = site_program(self.spec, site, self.secrets, **{k: v for k, v in wanted.items() if v})
            try:
                stack = wsp.open_stack(
                    self.spec, site, self._passphrase(), program, create=operation in ("up", "preview")
                )
            except auto.StackNotFoundError:
                result.ok = True
                emit(Event(EventKind.SITE_SUMMARY, "nothing deployed", site=site.name, data={"changes": {}}))
                return result
            wsp.set_config(stack, self._provider_config(site))
            if operation in ("up", "preview"):
                self._ensure_plugin(stack, site, emit)
            common: dict[str, Any] = {"on_event": translator, "color": "never"}
            replace = [urn(self.spec, site, "vm")] if replace_vm else None
            if operation == "up":
                up = stack.up(show_secrets=False, replace=replace, **common)
                result.outputs = self._outputs(up.outputs)
                result.changes = _counts(up.summary.resource_changes or translator.summary)
            elif operation == "preview":
                preview = stack.preview(replace=replace, **common)
                result.changes = _counts(preview.change_summary)
            elif operation == "refresh":
                refreshed = stack.refresh(**common)
                result.changes = _counts(refreshed.summary.resource_changes or translator.summary)
                result.outputs = self._outputs(stack.outputs())
            else:
                data = kept_on_destroy(site)
                if purge and data:
                    message = "destroy: data no longer kept (--purge-data)"
                    emit(Event(EventKind.SITE_OP, message, site=site.name, data={"op": "purge"}))
                    self._ensure_plugin(stack, site, emit)
                    stack.up(show_secrets=False, target=data_urns(self.spec, site), **common)
                destroyed = stack.destroy(**common)
                result.changes = _counts(destroyed.summary.resource_changes or translator.summary)
                # resources left (refused deletes): keep the stack so that destroy can be retried
                with contextlib.suppress(auto.CommandError):
                    stack.workspace.remove_stack(stack.name)
                result.deleted, result.kept = (data, []) if purge else ([], data)
            result.ok = True
        except _SiteFailed as exc:
            self._fail(result, exc.failure, emit)
        except auto.CommandError as exc:
            failure = classify([str(exc)], self._classifier(site), self._mask, translator.errors)
            self._fail(result, failure, emit)
        except auto.InvalidVersionError as exc:  # only when the version check was opted out of
            raise InputError(f"the `pulumi` CLI is too old: {exc}", hint=wsp.INSTALL_HINT) from None
        except InputError:
            raise
        except DeplatError as exc:
            self._fail(result, classify([exc.message], self._classifier(site), self._mask), emit)
        finally:
            result.seconds = round(time.monotonic() - started, 3)
        return result

    def _fail(self, result: SiteResult, failure: EngineFailure, emit: Emit) -> None:
        result.ok = False
        specific = failure.hint and failure.hint != failure.error_class.hint
        result.error = f"{failure.message} (hint: {failure.hint})" if specific else failure.message
        result.error_class = failure.error_class
        data = {"error_class": failure.error_class, "words": failure.words, "hint": failure.hint}
        emit(Event(EventKind.SITE_ERROR, f"{failure.words}: {failure.message}", site=result.site, data=data))

    # ------------------------------------------------------------------ pieces

    def _mask(self, text: str) -> str:
        return self.secrets.masker.text(text)

    def _passphrase(self) -> str:
        return passphrase.resolve(self.spec, self.secrets)

    def _classifier(self, site: Site) -> Callable[[str], ErrorClass] | None:
        try:
            return site_provider(site).classify_error
        except KeyError:
            return None

    def _provider_config(self, site: Site) -> dict[str, tuple[str, bool]]:
        config = dict(site_provider(site).provider_config(site, self.secrets, spec_dir=self.spec.base_dir))
        for value, secret in config.values():
            if secret:
                self.secrets.masker.add(str(value))
        return config

    def _check_credentials(self, site: Site) -> None:
        ok, reason = site_provider(site).check_credentials(site, self.secrets, spec_dir=self.spec.base_dir)
        if not ok:
            credentials = ErrorClass.CREDENTIALS
            raise _SiteFailed(EngineFailure(credentials, self._mask(str(reason)), credentials.hint))

    def _check_locks(self, site: Site) -> None:
        held = locks.find_locks(self.spec, wsp.stack_name(site))
        stale = [lock for lock in held if lock.stale]
        if stale:
            lock = stale[0]
            raise _SiteFailed(
                EngineFailure(
                    ErrorClass.LOCKED,
                    f"the state of {site.name} is locked by a run that is gone (pid {lock.pid}, "
                    f"since {lock.timestamp}): {lock.path}",
                    f"if no deplat run is active, clear it: deplat up --site {site.name} --clear-locks",
                )
            )
        if held:
            lock = held[0]
            raise _SiteFailed(
                EngineFailure(
                    ErrorClass.LOCKED,
                    f"another run is updating {site.name} ({lock.username}@{lock.hostname} pid {lock.pid}, "
                    f"since {lock.timestamp})",
                    "wait for it to finish",
                )
            )

    def _ensure_plugin(self, stack: auto.Stack, site: Site, emit: Emit) -> None:
        wanted = required_plugins(site_provider(site))
        if not wanted:
            return
        ws = stack.workspace
        installed = wsp.installed_plugins(stack)
        for name, version in wanted:
            if (name, version) not in installed:
                message = f"installing plugin {name} v{version}"
                emit(Event(EventKind.SITE_OP, message, site=site.name, data={"op": "plugin"}))
                ws.install_plugin(name, f"v{version}")

    def _outputs(self, outputs: Any) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for key, out in (outputs or {}).items():
            if getattr(out, "secret", False):
                _remember(self.secrets, out.value)
                shown[key] = MASK
            else:
                shown[key] = self.secrets.masker.data(getattr(out, "value", out))
        return shown


def required_plugins(provider: HostingProvider) -> list[tuple[str, str]]:
    """(name, version without "v") of every plugin a provider's sites need."""
    return [(str(name), str(version).lstrip("v")) for name, version in provider.plugins()]


def _remember(secrets: SecretStore, value: Any) -> None:
    if isinstance(value, str):
        secrets.masker.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _remember(secrets, v)
    elif isinstance(value, list | tuple):
        for v in value:
            _remember(secrets, v)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v]
    return [str(value)]


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    """Change counts by operation name (the SDK keys them by ``OpType`` or by str, by version)."""
    return {str(getattr(k, "value", k)): v for k, v in (changes or {}).items()}
