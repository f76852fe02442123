"""The provider's side of a probe: are the site's credentials still accepted by its provider?

A provider module may expose ``control_plane_check``; it is called with whichever of ``site``,
``spec``, ``secrets`` and ``timeout`` it names in its signature, and returns ``(ok, reason)`` or
``(ok, reason, error_class)``. A provider without one is "not checked" (ok). Exceptions are
classified by the provider's ``classify_error`` when it has one. Every reason is masked.

The call runs in a daemon thread bounded by ``timeout``: a control plane that never answers is a
failed check ("timeout"), never a hung probe.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

ControlPlane = tuple[bool, str, str | None]  # ok, reason, error class (suspended, forbidden, ...)


def check(spec: Spec, site: Site | str, secrets: SecretStore | None, timeout: float) -> ControlPlane:
    """``(ok, reason, error_class)`` for the provider of ``site``."""
    site_obj = spec.site(site) if isinstance(site, str) else site
    module = importlib.import_module(f"deplat.providers.{site_obj.provider.value}")
    func = getattr(module, "control_plane_check", None)
    if func is None:
        return True, "not checked", None
    offered: dict[str, Any] = {"site": site_obj, "spec": spec, "secrets": secrets, "timeout": timeout}
    params = inspect.signature(func).parameters
    kwargs = {name: value for name, value in offered.items() if name in params}

    outcome: list[ControlPlane] = []

    def call() -> None:
        try:
            outcome.append(_normalise(func(**kwargs), module))
        except Exception as exc:  # the provider's own failure is a classified answer, not a crash
            outcome.append((False, f"{type(exc).__name__}: {exc}", _classify(module, str(exc))))

    worker = threading.Thread(target=call, name=f"control-plane-{site_obj.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return False, f"control plane did not answer in {timeout:g}s", "timeout"
    ok, reason, error_class = outcome[0]
    if secrets is not None:
        reason = secrets.masker.text(reason)
    return ok, reason, error_class


def _normalise(answer: Any, module: Any) -> ControlPlane:
    if isinstance(answer, tuple) and len(answer) == 3:
        return bool(answer[0]), str(answer[1]), answer[2]
    if isinstance(answer, tuple) and len(answer) == 2:
        ok, reason = bool(answer[0]), str(answer[1])
        return ok, reason, None if ok else _classify(module, reason)
    return bool(answer), "ok" if answer else "refused", None if answer else "forbidden"


def _classify(module: Any, text: str) -> str:
    classify = getattr(module, "classify_error", None)
    if classify is None:
        return "fatal"
    try:
        value = classify(text)
    except Exception:
        return "fatal"
    return str(getattr(value, "value", value))
