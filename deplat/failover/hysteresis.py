"""Hysteresis: a site's state changes only after a run of agreeing probes, never on one probe.

Per site, from the stream of probes:
- a *failure* is a probe classified ``down`` or ``suspended``; ``failures_to_down`` consecutive
  failures make the site ``down`` — or ``suspended`` when any probe of that run was suspended
  (a provider that shows its suspension page and then stops answering is still a suspension);
- a *success* is a ``healthy`` probe; ``successes_to_up`` consecutive successes make it ``up``;
- ``degraded`` (some checks pass) is neither: it is reported (``Verdict.last``) but breaks both
  runs, so a site that still partly serves is never declared down, and a flapping site never
  comes back up on a lucky probe.

A site starts ``unknown`` and leaves it by the same rules. Once down, a suspended probe in the
current run of failures escalates the state to ``suspended`` (``changed`` is set again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from deplat.failover.probe import Health, SiteProbe

State = Literal["up", "down", "suspended", "unknown"]
FAILURES = (Health.down, Health.suspended)


@dataclass
class Verdict:
    site: str
    state: State
    changed: bool  # this probe changed the state
    failures: int  # current run of consecutive failures
    successes: int  # current run of consecutive successes
    last: Health  # this probe's own classification

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last"] = self.last.value
        return data


@dataclass
class _Track:
    state: State = "unknown"
    failures: int = 0
    successes: int = 0
    suspended_in_run: bool = False


@dataclass
class Hysteresis:
    failures_to_down: int
    successes_to_up: int
    _sites: dict[str, _Track] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.failures_to_down < 1 or self.successes_to_up < 1:
            raise ValueError("failures_to_down and successes_to_up must be at least 1")

    def observe(self, probe: SiteProbe) -> Verdict:
        return self.observe_health(probe.site, probe.health)

    def observe_health(self, site: str, health: Health) -> Verdict:
        """The same as ``observe``, from a classification alone (handy for replaying a timeline)."""
        track = self._sites.setdefault(site, _Track())
        before = track.state
        if health in FAILURES:
            track.failures += 1
            track.successes = 0
            track.suspended_in_run = track.suspended_in_run or health is Health.suspended
            if track.failures >= self.failures_to_down:
                track.state = "suspended" if track.suspended_in_run else "down"
        elif health is Health.healthy:
            track.successes += 1
            track.failures = 0
            track.suspended_in_run = False
            if track.successes >= self.successes_to_up:
                track.state = "up"
        else:  # degraded: reported, counted as neither
            track.failures = 0
            track.successes = 0
            track.suspended_in_run = False
        return Verdict(site, track.state, track.state != before, track.failures, track.successes, health)

    def state(self, site: str) -> State:
        track = self._sites.get(site)
        return track.state if track else "unknown"

    def reset(self, site: str | None = None) -> None:
        """Forget one site (or all): it starts ``unknown`` again, e.g. after a failover."""
        if site is None:
            self._sites.clear()
        else:
            self._sites.pop(site, None)
