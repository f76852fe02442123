"""What ``deplat up`` would create on each site, without credentials or the ``pulumi`` CLI.

``plan_offline`` runs each cloud site's Pulumi program (``deplat.stacks.site``) under the SDK's mock
runtime (``pulumi.runtime.set_mocks``, a fresh ``PlanMocks`` per site) and returns, per site, the
resources the program registers with their inputs. Values only the cloud knows (ids, addresses,
looked-up images) are placeholders: ids are numbers, addresses come from the documentation ranges
(192.0.2.0/24, 2001:db8::/32). Secret inputs are reported as ``[secret]`` and never carry a value,
and secret values are not even looked up: the bootstrap is rendered with placeholders.

A provider without a Pulumi program (``local``) plans from its own ``plan_notes``. The placeholders
a cloud would compute come from each provider's ``mock_outputs`` / ``mock_call``.

Nearly all the time of a plan is the first import of each provider SDK (``pulumi_gcp.compute``
alone takes ~0.6 s), so when the process is fresh (pulumi not yet imported, no other thread) the
cloud sites are planned in forked worker processes, one per site, side by side; otherwise one
after the other in this process. The result is the same either way.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.providers import HostingProvider, provider_of

if TYPE_CHECKING:
    import pulumi

    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

SECRET = "[secret]"
# Inputs that every resource carries and that say nothing about what it is.
NOISE = frozenset({"tags", "labels", "volumeTags", "description", "__defaults", "userDataReplaceOnChange"})


@dataclass
class PlannedResource:
    type: str  # Pulumi type token, e.g. aws:ec2/instance:Instance
    name: str  # logical name
    properties: dict[str, Any]  # inputs, wire names; secret values replaced by "[secret]"
    secrets: list[str] = field(default_factory=list)  # dotted paths of inputs marked secret

    @property
    def kind(self) -> str:
        """``aws:ec2/instance:Instance`` -> ``aws:ec2.Instance``."""
        pkg, _, rest = self.type.partition(":")
        module, _, cls = rest.partition(":")
        module = module.split("/")[0]
        return f"{pkg}:{module}.{cls}" if module not in ("", "index") else f"{pkg}:{cls}"

    def key_properties(self) -> dict[str, Any]:
        return {k: v for k, v in self.properties.items() if k not in NOISE and v not in (None, [], {})}


@dataclass
class SitePlan:
    site: str
    provider: str
    role: str
    kind: str  # "pulumi" (a Pulumi program) or "local" (no program: processes deplat supervises)
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for res, item in zip(self.resources, data["resources"], strict=True):
            item["kind"] = res.kind
        return data


def plan_offline(
    spec: Spec,
    sites: list[Site] | None = None,
    secrets: SecretStore | None = None,
    *,
    parallel: bool | None = None,
) -> list[SitePlan]:
    """The plan of each site in ``sites`` (default: all), in order. ``secrets``, when given, is only
    asked whether each secret is set (a note says which are not); values are never used.
    ``parallel``: plan cloud sites in forked processes (default: when that is safe, see above)."""
    chosen = list(sites if sites is not None else spec.sites)
    cloud = [s for s in chosen if provider_of(s).capabilities.pulumi_program]
    if parallel is None:
        parallel = len(cloud) > 1 and _can_fork()
    planned: dict[str, SitePlan] = {}
    if parallel and cloud:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(processes=len(cloud)) as pool:
            for plan in pool.starmap(_cloud_plan, [(spec, site) for site in cloud]):
                planned[plan.site] = plan
    else:
        for site in cloud:
            planned[site.name] = _cloud_plan(spec, site)
    plans = []
    for site in chosen:
        if site.name not in planned:
            plans.append(_plan_without_program(spec, site))
            continue
        plan = planned[site.name]
        plan.notes += provider_of(site).plan_notes(site, spec)[1]  # e.g. which server type it gets
        if secrets is not None:
            for name in _site_secret_names(spec, site):
                if secrets.get(name) is None:
                    plan.notes.append(f"secret {name} is not set: `deplat up` will not start without it")
        plans.append(plan)
    return plans


def _can_fork() -> bool:
    """Forking is safe here only in a fresh, single-threaded process that has not loaded pulumi."""
    return hasattr(os, "fork") and threading.active_count() == 1 and "pulumi" not in sys.modules


def _plan_without_program(spec: Spec, site: Site) -> SitePlan:
    outputs, notes = provider_of(site).plan_notes(site, spec)
    return SitePlan(
        site=site.name,
        provider=site.provider.value,
        role=site.role.value,
        kind="local",
        outputs=outputs,
        notes=notes,
    )


def _ensure_event_loop() -> None:
    """Pulumi's mock runtime uses ``asyncio.get_event_loop()``, which fails once an earlier
    ``asyncio.run`` in this thread has closed and unset the loop; give it a fresh one then."""
    import asyncio

    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def _cloud_plan(spec: Spec, site: Site) -> SitePlan:
    import pulumi

    from deplat.stacks.site import build

    _ensure_event_loop()
    mocks = PlanMocks(provider_of(site))
    pulumi.runtime.set_mocks(mocks, project=spec.app, stack=site.name, preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        built = build(spec, site, None)
        return pulumi.Output.all(**built).apply(outputs.update)

    run()
    mocks.resources.sort(key=lambda r: (r.name, r.type))  # registration order varies from run to run
    return SitePlan(
        site=site.name,
        provider=site.provider.value,
        role=site.role.value,
        kind="pulumi",
        resources=mocks.resources,
        outputs=outputs,
    )


def _site_secret_names(spec: Spec, site: Site) -> list[str]:
    names = [n for svc in spec.services.values() for n in svc.secrets]
    if site.credentials.secret:
        names.append(site.credentials.secret)
    names += provider_of(site).secret_names(site)
    return list(dict.fromkeys(names))


def reveal(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """An input value in wire form with each secret replaced by ``[secret]``, and the paths of the
    secrets found."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET, [path]
        out: dict[str, Any] = {}
        found: list[str] = []
        for key, item in value.items():
            out[key], sub = reveal(item, f"{path}.{key}" if path else key)
            found += sub
        return out, found
    if isinstance(value, list):
        items, found = [], []
        for i, item in enumerate(value):
            shown, sub = reveal(item, f"{path}[{i}]")
            items.append(shown)
            found += sub
        return items, found
    if isinstance(value, float) and value.is_integer():  # the wire carries every number as a float
        return int(value), []
    return value, []


def mock_id(typ: str, name: str) -> int:
    """A placeholder id: a number derived from the resource's type and name."""
    return 100000 + int(hashlib.sha256(f"{typ}::{name}".encode()).hexdigest()[:8], 16) % 900000


class PlanMocks:
    """Pulumi mocks that record every resource a program registers (see module docstring).

    Built lazily as a ``pulumi.runtime.Mocks`` subclass so that importing this module does not
    import pulumi; use ``PlanMocks(provider)`` as usual. What the cloud would compute comes from
    the site's provider (``mock_outputs``, ``mock_call``).
    """

    def __new__(cls, provider: HostingProvider) -> Any:
        return _mocks_class()(provider)


_MOCKS: type | None = None


def _mocks_class() -> type:
    global _MOCKS
    if _MOCKS is not None:
        return _MOCKS
    import pulumi

    class _PlanMocks(pulumi.runtime.Mocks):
        def __init__(self, provider: HostingProvider) -> None:
            self.provider = provider
            self.resources: list[PlannedResource] = []
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            # numeric (Hetzner resources refer to each other by integer id) and stable across runs
            n = mock_id(args.typ, args.name)
            shown, secret_paths = reveal(dict(args.inputs))
            self.resources.append(PlannedResource(args.typ, args.name, shown, secret_paths))
            return str(n), {**args.inputs, **self.provider.mock_outputs(args.typ, args.name, n)}

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
            self.calls.append((args.token, dict(args.args)))
            return self.provider.mock_call(args.token, args.args), []  # (outputs, check failures)

    _MOCKS = _PlanMocks
    return _MOCKS
