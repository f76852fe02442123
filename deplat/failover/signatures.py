"""Suspension signatures: how a provider's "this account is suspended" answer looks over HTTP.

Each provider module may declare ``SUSPENSION_SIGNATURES``, a list of ``(status or None, body
regex)``; a failed health check whose answer matches one means the account is suspended, not that
the app is down.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable

Signature = tuple[int | None, re.Pattern[str]]


def signatures_for(provider: str) -> list[Signature]:
    """The provider's suspension signatures, compiled (case-insensitive); [] when it has none."""
    try:
        module = importlib.import_module(f"deplat.providers.{provider}")
    except ModuleNotFoundError:
        return []
    table = getattr(module, "SUSPENSION_SIGNATURES", None) or []
    return [(status, re.compile(pattern, re.IGNORECASE)) for status, pattern in table]


def all_signatures() -> list[Signature]:
    from deplat.providers import PROVIDERS

    return [sig for name in PROVIDERS for sig in signatures_for(name)]


def is_suspension(status: int | None, body: str, signatures: Iterable[Signature]) -> bool:
    return any((want is None or want == status) and rx.search(body) for want, rx in signatures)
