"""The contract every hosting provider fulfils: one ``HostingProvider`` subclass per module.

A provider declares what it is (``Capabilities``), what its sites accept (``Options``, a pydantic
model that also feeds the JSON Schema), how to read its errors (``ERROR_TABLE``, rows of regex,
``ErrorClass`` and the source the row comes from) and what a suspension answer looks like
(``SUSPENSION_SIGNATURES``). Its methods check credentials (locally, no network) and the control
plane (one read-only API call), build a site's Pulumi resources (``build_site``; ``None`` for a
provider without a Pulumi program) and stand in for the cloud in offline plans (``mock_outputs``).

Nothing here imports a cloud SDK or the spec model at run time: importing a provider is cheap.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from deplat.errors import ErrorClass

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.stacks.site import SiteContext

OptionProblems = list[tuple[tuple[Any, ...], str]]
ControlPlane = tuple[bool, str, ErrorClass | None]  # ok, reason (masked by the caller), error class


@dataclass(frozen=True)
class Capabilities:
    """What a provider's sites are; callers ask these instead of comparing provider names."""

    runs_locally: bool = False  # processes on this machine (loopback, a supervisor), no account
    pulumi_program: bool = True  # resources built by ``build_site`` in a Pulumi stack
    has_vm: bool = True  # a VM booted with the bootstrap as user data
    object_storage: bool = True  # each site has a versioned backup bucket


class ErrorRow(NamedTuple):
    """One row of a provider's error table: where the words come from is part of the row."""

    pattern: str  # a regex, matched case-insensitively
    error_class: ErrorClass
    source: str  # the documentation or code the words were read from


class ProviderOptions(BaseModel):
    """Base of every provider's ``options`` model: unknown keys are errors (see ``option_problems``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def classify_with(table: tuple[ErrorRow, ...] | list[ErrorRow], text: str) -> ErrorClass:
    """The class of the first row of ``table`` matching ``text`` (case-insensitive, first match
    wins: put the most specific rows first); ``fatal`` when none does."""
    for row in table:
        if re.search(row.pattern, text, re.IGNORECASE):
            return row.error_class
    return ErrorClass.FATAL


def status_class(kind: ErrorClass, status: int | None) -> ErrorClass:
    """Refine a ``fatal`` answer by its HTTP status: 401/403 forbidden, 429/5xx transient."""
    if kind is not ErrorClass.FATAL or status is None:
        return kind
    if status in (401, 403):
        return ErrorClass.FORBIDDEN
    if status == 429 or status >= 500:
        return ErrorClass.TRANSIENT
    return kind


class HostingProvider:
    """Base class of a hosting provider. Subclasses set the class attributes and override the hooks
    their capabilities call for; the defaults describe a provider with nothing to check."""

    name: ClassVar[str]
    title: ClassVar[str] = ""  # a human name, e.g. "Hetzner Cloud"
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    ERROR_TABLE: ClassVar[tuple[ErrorRow, ...]] = ()
    # (HTTP status or None for any, regex on the body): an answer meaning "this account is cut off"
    SUSPENSION_SIGNATURES: ClassVar[tuple[tuple[int | None, str], ...]] = ()
    # The pip extra (``deplat[<extra>]``) that installs the SDKs its sites need, and their top-level
    # modules: checked before a site runs, so a missing SDK is one message naming the extra.
    extra: ClassVar[str | None] = None
    sdk_modules: ClassVar[tuple[str, ...]] = ()
    # Pulumi type tokens of the site's resources deplat addresses by URN: "vm" (``up --replace-vm``),
    # "data volume" and "backup bucket" (kept on destroy unless ``--purge-data``).
    RESOURCE_TYPES: ClassVar[Mapping[str, str]] = {}
    # The Pulumi provider SDK (a Python package, e.g. ``pulumi_aws``) whose plugin a site needs.
    pulumi_sdk: ClassVar[str | None] = None

    # ------------------------------------------------------------------ spec

    def option_names(self) -> tuple[str, ...]:
        return tuple(self.Options.model_fields)

    def site_problems(self, site: Site, spec: Spec) -> OptionProblems:
        """The provider's own checks of a site beyond its options' types (region, size, limits)."""
        return []

    def validate_site(self, site: Site, spec: Spec) -> OptionProblems:
        """Every problem of ``site`` for this provider: unknown options (with a close match),
        the provider's own checks, then option types for the options those did not already flag."""
        problems = unknown_option_problems(site, self.option_names(), self.name)
        problems += self.site_problems(site, spec)
        flagged = {path[:2] for path, _ in problems}
        known = {k: v for k, v in site.options.items() if k in self.option_names()}
        try:
            self.Options.model_validate(known)
        except ValidationError as exc:
            for error in exc.errors():
                path = ("options", *error["loc"])
                if path[:2] not in flagged:
                    problems.append((path, error["msg"]))
        return problems

    def options(self, site: Site) -> ProviderOptions:
        """The site's options as the typed model (only after the spec validated)."""
        return self.Options.model_validate(site.options)

    def secret_names(self, site: Site) -> list[str]:
        """Secrets a site of this provider needs besides the services' (e.g. API tokens)."""
        return []

    def address(self, site: Site, spec: Spec) -> str | None:
        """The address a site answers on when the spec decides it (local sites); else None."""
        return None

    # ------------------------------------------------------------------ errors

    def classify_error(self, text: str) -> ErrorClass:
        """``suspended`` / ``forbidden`` / ``transient`` / ``capacity`` / ``fatal`` for an error
        seen on this provider (its API's words or the engine's)."""
        return classify_with(self.ERROR_TABLE, text)

    # ------------------------------------------------------------------ credentials and control plane

    def check_credentials(
        self, site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
    ) -> tuple[bool, str]:
        """Are credentials available for ``site``? Looks at files, env and secrets only: no network."""
        return True, "no credentials needed"

    def control_plane_check(
        self, site: Site, spec: Spec, secrets: SecretStore | None, timeout: float
    ) -> ControlPlane:
        """Does the provider still accept the site's credentials? One read-only call at most;
        ``(ok, reason, error class)``; no reason may carry a credential."""
        return True, "not checked", None

    # ------------------------------------------------------------------ Pulumi program

    def build_site(self, ctx: SiteContext) -> Mapping[str, Any] | None:
        """Create the site's resources inside a running Pulumi program; returns its outputs (see
        ``deplat.stacks.site``). None: the provider has no Pulumi program."""
        return None

    def provider_config(
        self, site: Site, secrets: SecretStore | None = None, *, spec_dir: Path | None = None
    ) -> dict[str, tuple[str, bool]]:
        """Pulumi stack config for the site: key -> (value, is_secret)."""
        return {}

    def plugins(self) -> list[tuple[str, str]]:
        """(name, version) of every Pulumi plugin a site needs: by default the one of ``pulumi_sdk``,
        read from the installed SDK (``sdk_plugin``)."""
        return [sdk_plugin(self.pulumi_sdk)] if self.pulumi_sdk else []

    def mock_outputs(self, typ: str, name: str, n: int) -> dict[str, Any]:
        """In an offline plan, the outputs the cloud would compute for a resource of type ``typ``
        (placeholders: ``n`` is a stable number; addresses from the documentation ranges)."""
        return {}

    def mock_call(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """In an offline plan, the answer of a provider function (a data source) call."""
        return {}

    def plan_notes(self, site: Site, spec: Spec) -> tuple[dict[str, Any], list[str]]:
        """(outputs, notes) of a site's offline plan: for a provider without a Pulumi program, all
        of it; for one with, the notes are added to its resources (e.g. the server type chosen)."""
        return {}, []


def unknown_option_problems(site: Site, known: tuple[str, ...], provider: str) -> OptionProblems:
    """One problem per key of ``site.options`` that the provider does not know, listing the known ones."""
    problems: OptionProblems = []
    for key in site.options:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            listed = ", ".join(known) or "none"
            problems.append(
                (("options", key), f"unknown option '{key}' for {provider} sites{hint}; known: {listed}")
            )
    return problems


def sdk_plugin(sdk: str) -> tuple[str, str]:
    """(plugin name, version) from an installed provider SDK's ``pulumi-plugin.json``, read
    without importing the SDK. Raises ``LookupError`` when the SDK is not installed."""
    import importlib.util
    import json

    found = importlib.util.find_spec(sdk)
    if found is None or not found.submodule_search_locations:
        raise LookupError(f"the Python package {sdk} is not installed (pip install {sdk.replace('_', '-')})")
    meta = json.loads((Path(found.submodule_search_locations[0]) / "pulumi-plugin.json").read_text())
    return str(meta["name"]), str(meta["version"])


# ------------------------------------------------------------------ site checks the cloud providers share


def user_data_problems(
    site: Site, spec: Spec, device: str, limit: int, measure: Callable[[str], int] | None = None
) -> OptionProblems:
    """The bootstrap as the provider receives it (``measure``: its size in bytes, default the plain
    text; secrets counted at their placeholder size) must fit ``limit`` bytes."""
    from deplat.stacks.bootstrap import PLACEHOLDER_BYTES, ProviderBits, render

    try:
        text = render(spec, site, ProviderBits(device))
    except ValueError as exc:
        return [((), str(exc))]
    size = measure(text) if measure else len(text.encode())
    if size <= limit:
        return []
    return [
        (
            (),
            f"the bootstrap for this site is {size} bytes as sent, over {site.provider.value}'s "
            f"user-data limit of {limit} bytes (secrets counted as {PLACEHOLDER_BYTES} bytes each): "
            "fewer or smaller services",
        )
    ]


def volume_size_problems(spec: Spec, minimum: int, what: str) -> OptionProblems:
    """The site's data volume (the services' volumes added up) must be at least ``minimum`` GiB."""
    from deplat.stacks.site import data_gib

    size = data_gib(spec)
    if size >= minimum:
        return []
    return [
        (
            (),
            f"the data volume would be {size} GiB (the services' volumes added up); {what} are at "
            f"least {minimum} GiB: make the volumes at least {minimum} GiB together",
        )
    ]


def cidr_problems(site: Site) -> OptionProblems:
    """``options.ssh_cidrs``: a list of CIDR blocks allowed to reach SSH (port 22)."""
    raw = site.options.get("ssh_cidrs")
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [(("options", "ssh_cidrs"), "should be a list of CIDR blocks, e.g. [203.0.113.0/24]")]
    problems: OptionProblems = []
    for i, item in enumerate(raw):
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            problems.append(
                (("options", "ssh_cidrs", i), f"'{item}' is not a CIDR block (e.g. 203.0.113.0/24)")
            )
    return problems
