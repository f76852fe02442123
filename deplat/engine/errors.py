"""What went wrong in a Pulumi run, in deplat's words: ONE table from CLI/diagnostic text to a class.

The Automation API hands back the CLI's text (``CommandError``) and the engine's diagnostic events.
Brittle text matching lives here and only here: first the engine-level patterns below (locks,
passphrase, cancel, plugins, missing stacks), then the provider module's own ``classify_error``
(suspended / forbidden / transient / capacity / fatal), which knows its cloud's error codes. Every
class is a ``deplat.errors.ErrorClass`` member, which carries its words and its hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deplat.errors import ErrorClass

# (pattern over the CLI's text, class, what to tell the user). Order matters: first match wins.
TABLE: list[tuple[re.Pattern[str], ErrorClass, str]] = [
    (
        re.compile(
            r"the stack is currently locked by|\[409\] Conflict: Another update is currently in progress"
        ),
        ErrorClass.LOCKED,
        "another run holds the state lock of this site",
    ),
    (
        re.compile(r"update canceled|operation canceled|context canceled", re.I),
        ErrorClass.CANCELED,
        "the operation was canceled",
    ),
    (
        re.compile(r"incorrect passphrase|passphrase must be set|failed to decrypt", re.I),
        ErrorClass.PASSPHRASE,
        "the state passphrase is missing or wrong",
    ),
    (
        re.compile(
            r"no resource plugin .* found|could not find plugin|failed to download plugin|"
            r"downloading from https://get\.pulumi\.com",
            re.I,
        ),
        ErrorClass.PLUGIN,
        "the provider plugin is not installed and could not be downloaded",
    ),
    (re.compile(r"no stack named .* found"), ErrorClass.FATAL, "the site has no state yet"),
]

ProviderClassifier = Callable[[str], ErrorClass | str]


@dataclass(frozen=True)
class EngineFailure:
    """A classified failure; ``message`` is already masked, ``hint`` the class's own unless the
    failure knows a better one."""

    error_class: ErrorClass
    message: str
    hint: str | None = None

    @property
    def words(self) -> str:
        return self.error_class.words


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
    error_class, summary = ErrorClass.FATAL, ""
    for pattern, cls, what in TABLE:
        if pattern.search(joined):
            error_class, summary = cls, what
            break
    else:
        if provider_classify is not None:
            try:
                said = provider_classify(joined)
            except Exception:  # a classifier bug must not hide the real error
                said = None
            error_class = ErrorClass.of(said, ErrorClass.FATAL) or ErrorClass.FATAL
    shown = "\n".join(diagnostics) if diagnostics else joined
    detail = "; ".join(important_lines(shown, limit=3))
    message = mask(f"{summary}: {detail}" if summary and detail else summary or detail or "failed")
    return EngineFailure(error_class=error_class, message=message, hint=error_class.hint)
