"""The traffic switch behind one interface, with its two implementations.

- ``DnsTraffic``: the app's names on EVERY configured DNS provider, compare-and-swap
  (``deplat.dns.switch``). It is ``switched`` (or ``already``) only when every provider serves the new
  site; when some did and others could not be reached it is ``partial``, naming the providers left
  behind, and running it again (``deplat failover --resume``, the watcher) finishes the job.
- ``FrontDoorTraffic``: the local front door (``deplat.failover.frontdoor``), for a spec without DNS.

``switch`` moves traffic from ``old`` to ``new``; ``verify`` asks where traffic goes now: every DNS
provider is asked itself (its authoritative server or API, so a spec whose only DNS provider is
Route 53 is verified through Route 53's API), or the front door is asked through its own port.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from deplat.errors import OperationFailed
from deplat.events import Emit, discard
from deplat.failover import frontdoor
from deplat.sites import Addresses

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec

SwitchOutcome = Literal["switched", "already", "partial", "conflict"]


@dataclass
class SwitchResult:
    """What one switch did. ``left_behind``: the DNS providers that still do not serve the new site."""

    via: str  # dns | front_door
    outcome: SwitchOutcome
    message: str = ""
    left_behind: list[str] = field(default_factory=list)
    providers: dict[str, str] = field(default_factory=dict)  # DNS provider -> its outcome
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return self.outcome == "partial"

    def to_dict(self) -> dict[str, Any]:
        """Flat: the detail's keys (``front_door``, ``report``) beside the outcome."""
        data = asdict(self)
        return {**data.pop("detail"), **data, "partial": self.partial}


@dataclass
class TrafficCheck:
    """Where traffic goes now: ``serving`` is True when all of it goes to the new site."""

    via: str
    serving: bool
    left_behind: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrafficSwitch(Protocol):
    via: str

    def switch(self, old_site: str, old: Addresses | None, new_site: str, new: Addresses) -> SwitchResult: ...

    def verify(self, new_site: str, new: Addresses) -> TrafficCheck: ...


class DnsTraffic:
    """The app's names on every DNS provider of the spec."""

    via = "dns"

    def __init__(self, spec: Spec, secrets: SecretStore, *, timeout: float, emit: Emit = discard) -> None:
        self.spec, self.secrets, self.timeout, self.emit = spec, secrets, timeout, emit

    def switch(self, old_site: str, old: Addresses | None, new_site: str, new: Addresses) -> SwitchResult:
        from deplat.dns.switch import switch_all

        report = switch_all(self.spec, self.secrets, old, new, self.emit, self.timeout)
        providers = {r.name: r.outcome for r in report.results}
        moved = [name for name, outcome in providers.items() if outcome in ("switched", "already")]
        behind = [name for name, outcome in providers.items() if outcome not in ("switched", "already")]
        detail = {"report": report.to_dict()}
        if not behind:
            outcome: SwitchOutcome = "switched" if "switched" in providers.values() else "already"
            return SwitchResult(self.via, outcome, "", [], providers, detail)
        if moved:
            why = "; ".join(
                f"{r.name}: {r.outcome} ({r.message})" for r in report.results if r.name in behind
            )
            return SwitchResult(self.via, "partial", why, behind, providers, detail)
        if report.conflicts:
            return SwitchResult(
                self.via,
                "conflict",
                f"DNS no longer points at {old_site}: another failover won ({providers})",
                behind,
                providers,
                detail,
            )
        raise OperationFailed(
            "the DNS switch failed on every provider: "
            + "; ".join(f"{r.name}: {r.message}" for r in report.results),
            hint="`deplat failover --resume` retries the switch (compare-and-swap: it is safe)",
        )

    def verify(self, new_site: str, new: Addresses) -> TrafficCheck:
        from deplat.dns.base import Served
        from deplat.dns.switch import read_all

        want = Served.of(new)
        answers = read_all(self.spec, self.secrets, timeout=self.timeout)
        views: dict[str, Any] = {}
        behind: list[str] = []
        for answer in answers:
            serves = (
                answer.ok
                and bool(answer.records)
                and all(served.same_addresses(want) for served in answer.records.values())
            )
            if not serves:
                behind.append(answer.provider)
            views[answer.provider] = answer.to_dict()
        return TrafficCheck(self.via, bool(answers) and not behind, behind, {"providers": views})


class FrontDoorTraffic:
    """The local front door: compare-and-swap on where it forwards."""

    via = "front_door"

    def __init__(self, spec: Spec, *, timeout: float) -> None:
        self.spec, self.timeout = spec, timeout

    def switch(self, old_site: str, old: Addresses | None, new_site: str, new: Addresses) -> SwitchResult:
        outcome = frontdoor.switch(self.spec, old_site, new_site)
        if outcome.outcome == "conflict":
            message = f"the front door points at {outcome.site}, not {old_site}: another failover won"
            return SwitchResult(self.via, "conflict", message, detail={"front_door": outcome.to_dict()})
        result: SwitchOutcome = "switched" if outcome.outcome == "switched" else "already"
        return SwitchResult(self.via, result, detail={"front_door": outcome.to_dict()})

    def verify(self, new_site: str, new: Addresses) -> TrafficCheck:
        checks = frontdoor.check(self.spec, new_site, self.timeout)
        if checks is None:  # nothing listens: traffic goes nowhere else, the target answers alone
            return TrafficCheck(self.via, True, [], {"note": "no front door is running"})
        serving = bool(checks) and all(c["ok"] for c in checks)
        return TrafficCheck(self.via, serving, [] if serving else ["front_door"], {"checks": checks})


def traffic_for(spec: Spec, secrets: SecretStore, *, timeout: float, emit: Emit = discard) -> TrafficSwitch:
    """The spec's traffic switch: DNS when it configures DNS providers, else the front door."""
    if frontdoor.uses_front_door(spec):
        return FrontDoorTraffic(spec, timeout=timeout)
    return DnsTraffic(spec, secrets, timeout=timeout, emit=emit)
