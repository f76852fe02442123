"""The provider's side of a probe: are the site's credentials still accepted by its provider?

Asks the site's provider (``HostingProvider.control_plane_check``, see ``deplat.providers``) for
``(ok, reason, error_class)``. An exception from the provider is its own classified failure
(``classify_error``), never a crash. Every reason is masked.

The call runs in a daemon thread bounded by ``timeout``: a control plane that never answers is a
failed check ("timeout"), never a hung probe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from deplat.providers import provider_of

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

ControlPlane = tuple[bool, str, str | None]  # ok, reason, error class (an ErrorClass, or "timeout")


def check(spec: Spec, site: Site | str, secrets: SecretStore | None, timeout: float) -> ControlPlane:
    """``(ok, reason, error_class)`` for the provider of ``site``."""
    site_obj = spec.site(site) if isinstance(site, str) else site
    provider = provider_of(site_obj)
    outcome: list[ControlPlane] = []

    def call() -> None:
        try:
            outcome.append(provider.control_plane_check(site_obj, spec, secrets, timeout))
        except Exception as exc:  # the provider's own failure is a classified answer, not a crash
            outcome.append((False, f"{type(exc).__name__}: {exc}", provider.classify_error(str(exc))))

    worker = threading.Thread(target=call, name=f"control-plane-{site_obj.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return False, f"control plane did not answer in {timeout:g}s", "timeout"
    ok, reason, error_class = outcome[0]
    if secrets is not None:
        reason = secrets.masker.text(reason)
    return ok, reason, None if error_class is None else str(error_class)
