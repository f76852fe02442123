"""What went wrong in a Pulumi run, in deplat's words: ONE table from CLI/diagnostic text to a class.

The Automation API hands back the CLI's text (``CommandError``) and the engine's diagnostic events.
Brittle text matching lives here and only here: first the engine-level patterns below (locks,
passphrase, cancel, plugins, missing stacks), then the provider module's own ``classify_error``
(suspended / forbidden / transient / fatal), which knows its cloud's error codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# What each class is called when shown to a person.
WORDS = {
    "suspended": "account suspended or forbidden",
    "forbidden": "account suspended or forbidden",
    "transient": "transient",
    "fatal": "fatal",
    "locked": "locked by another run",
    "canceled": "canceled",
    "passphrase": "wrong passphrase",
    "plugin": "provider plugin missing",
    "credentials": "credentials missing or refused",
    "filesystem": "local file system",
}

# (pattern over the CLI's text, class, what to tell the user). Order matters: first match wins.
TABLE: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(
            r"the stack is currently locked by|\[409\] Conflict: Another update is currently in progress"
        ),
        "locked",
        "another run holds the state lock of this site",
    ),
    (
        re.compile(r"update canceled|operation canceled|context canceled", re.I),
        "canceled",
        "the operation was canceled",
    ),
    (
        re.compile(r"incorrect passphrase|passphrase must be set|failed to decrypt", re.I),
        "passphrase",
        "the state passphrase is missing or wrong",
    ),
    (
        re.compile(
            r"no resource plugin .* found|could not find plugin|failed to download plugin|"
            r"downloading from https://get\.pulumi\.com",
            re.I,
        ),
        "plugin",
        "the provider plugin is not installed and could not be downloaded",
    ),
    (re.compile(r"no stack named .* found"), "fatal", "the site has no state yet"),
]

ProviderClassifier = Callable[[str], str]


@dataclass(frozen=True)
class EngineFailure:
    """A classified failure: ``error_class`` is one of ``WORDS``; ``message`` is already masked."""

    error_class: str
    message: str
    hint: str | None = None

    @property
    def words(self) -> str:
        return WORDS.get(self.error_class, self.error_class)


HINTS = {
    "locked": "if no other deplat run is active, `deplat up --clear-locks` removes a stale lock",
    "passphrase": "set DEPLAT_PASSPHRASE (or the spec's state.passphrase) to the passphrase the state was "
    "created with",
    "plugin": "run `deplat doctor`; offline, pre-install it: "
    "pulumi plugin install resource NAME VERSION --file X",
    "suspended": "the provider refuses this account: fail over with `deplat failover`",
    "forbidden": "the provider refuses this account: fail over with `deplat failover`",
    "transient": "retry later; the provider reported a temporary error",
    "filesystem": "a local disk is full or read-only, or a file is not yours: fix it (the message names "
    "the path) and rerun",
}


def important_lines(text: str, limit: int = 6) -> list[str]:
    """The lines of CLI output worth showing: errors first, no progress noise, no duplicates."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error") or "error:" in ln.lower()]
    chosen = errors or lines[-limit:]
    return list(dict.fromkeys(chosen))[:limit]


GENERIC = re.compile(r"^(error: )?(update failed|preview failed|destroy failed|refresh failed)$", re.I)


def classify(
    texts: Iterable[str],
    provider_classify: ProviderClassifier | None = None,
    mask: Callable[[str], str] = lambda s: s,
    diagnostics: Iterable[str] = (),
) -> EngineFailure:
    """Classify a failure from everything we saw (the engine's error diagnostics and the CLI's text).

    The message shows the diagnostics when there are any (they name the resource and the provider's
    words); the CLI's own text otherwise.
    """
    diagnostics = [d.strip() for d in diagnostics if d.strip() and not GENERIC.match(d.strip())]
    texts = [*diagnostics, *texts]
    parts = [t for t in texts if t and t.strip()]
    joined = "\n".join(parts)
    error_class, summary = "fatal", ""
    for pattern, cls, what in TABLE:
        if pattern.search(joined):
            error_class, summary = cls, what
            break
    else:
        if provider_classify is not None:
            try:
                error_class = provider_classify(joined) or "fatal"
            except Exception:  # a classifier bug must not hide the real error
                error_class = "fatal"
    shown = "\n".join(diagnostics) if diagnostics else joined
    detail = "; ".join(important_lines(shown, limit=3))
    message = mask(f"{summary}: {detail}" if summary and detail else summary or detail or "failed")
    return EngineFailure(error_class=error_class, message=message, hint=HINTS.get(error_class))
