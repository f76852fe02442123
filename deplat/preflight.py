"""What must be at hand before an operation starts: the SDKs, secrets and credentials it will need.

``deplat up`` calls ``require`` before any preview or prompt, so that whatever is missing stops it at
once, in one message that lists every gap (``MissingInputs``, exit 2). ``validate`` and ``doctor``
show the same gaps as data (``gaps``) without failing. Nothing here reaches the network or prints,
and no secret value leaves this module: a ``Gap`` names a secret, never its value.

Where gaps come from:
- an SDK: each hosting provider and DNS provider kind declares its pip extra and the top-level modules
  it installs (``extra``, ``sdk_modules``); a module that cannot be found means ``deplat[<extra>]`` is
  not installed. ``find_spec`` looks without importing, so this costs microseconds.
- a secret: every service's secrets (any site runs every service), each cloud site's credentials
  secret and the provider's own (``secret_names``: API tokens, object-storage keys), each DNS
  provider's credentials secret and ``*secret`` options;
- credentials: the provider's local check (``check_credentials``: files, environment, no network);
- the state passphrase, for cloud sites, when no source is set and nobody can be asked.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from deplat.errors import InputError

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import DnsProvider, Site, Spec


@dataclass(frozen=True)
class Gap:
    """One thing missing before an operation can run."""

    kind: str  # "sdk" | "secret" | "credentials" | "passphrase"
    name: str  # the extra, the secret's name, the site, or "state passphrase"
    needed_by: str  # e.g. "service web", "site aws-fra", "DNS provider route53", "cloud sites' state"
    fix: str  # what to do, e.g. "pip install 'deplat[aws]'", "export NAME=..."

    def message(self) -> str:
        if self.kind == "sdk":
            return f"the {self.name} SDKs are not installed ({self.needed_by} needs them): {self.fix}"
        if self.kind == "secret":
            return f"secret {self.name} is not set ({self.needed_by} needs it): {self.fix}"
        if self.kind == "credentials":
            return f"{self.needed_by} has no usable credentials: {self.fix}"
        return f"no state passphrase ({self.needed_by} needs it): {self.fix}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self) | {"message": self.message()}


class MissingInputs(InputError):
    """Everything an operation lacks, reported at once before it starts (exit 2)."""

    def __init__(self, operation: str, gaps: Sequence[Gap]) -> None:
        self.gaps = list(gaps)
        n = len(self.gaps)
        lines = "\n".join(f"  - {gap.message()}" for gap in self.gaps)
        super().__init__(
            f"`deplat {operation}` cannot start: {n} thing{'s' * (n != 1)} missing\n{lines}",
            hint="nothing was changed; set what is missing and run it again (`deplat doctor` checks all)",
        )


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def _extra_gap(extra: str | None, modules: Iterable[str], needed_by: str) -> Gap | None:
    missing = [m for m in modules if not installed(m)]
    if not extra or not missing:
        return None
    return Gap("sdk", extra, needed_by, f"pip install 'deplat[{extra}]' (missing: {', '.join(missing)})")


def _dns_backend_class(dns: DnsProvider) -> Any:
    from deplat import dns as kinds

    return kinds.get(dns.provider.value).Backend


def sdk_gaps(spec: Spec, sites: Sequence[Site], *, dns: bool = False) -> list[Gap]:
    """The extras the given sites (and, with ``dns``, the spec's DNS providers) need but lack."""
    from deplat.providers import provider_of

    gaps: dict[str, Gap] = {}
    for site in sites:
        provider = provider_of(site)
        gap = _extra_gap(provider.extra, provider.sdk_modules, f"site {site.name}")
        if gap and gap.name not in gaps:
            gaps[gap.name] = gap
    for entry, backend in _dns_sdk_users(spec) if dns else []:
        gap = _extra_gap(backend.extra, backend.sdk_modules, f"DNS provider {entry.name}")
        if gap and gap.name not in gaps:
            gaps[gap.name] = gap
    return list(gaps.values())


def dns_sdk_modules(spec: Spec) -> list[str]:
    """The SDK modules the spec's DNS providers import (``deplat.dns.sync_inputs`` keeps them)."""
    return list(dict.fromkeys(m for _, backend in _dns_sdk_users(spec) for m in backend.sdk_modules))


def _dns_sdk_users(spec: Spec) -> list[tuple[DnsProvider, Any]]:
    """Each DNS provider that uses its kind's SDK, with its backend class."""
    found = []
    for entry in spec.dns:
        backend = _dns_backend_class(entry)
        if backend is not None and _dns_needs_sdk(entry):
            found.append((entry, backend))
    return found


def _dns_needs_sdk(entry: DnsProvider) -> bool:
    # Cloud DNS with an OAuth access token in a secret is plain HTTPS; everything else uses its SDK.
    return not (
        entry.provider.value == "clouddns" and entry.credentials.secret and not entry.credentials.file
    )


def _set_fix(name: str, secrets: SecretStore) -> str:
    where = f" or add {name}=... to {secrets.file_path}" if secrets.file_path else ""
    return f"export {name}=...{where}"


def secret_gaps(spec: Spec, sites: Sequence[Site], secrets: SecretStore) -> list[Gap]:
    """Secrets and credentials the given sites need that are not set (no network)."""
    from deplat.providers import provider_of

    wanted: dict[str, str] = {}  # secret name -> who needs it first
    if sites:
        for service_name, service in spec.services.items():
            for name in service.secrets:
                wanted.setdefault(name, f"service {service_name}")
    cloud = [s for s in sites if not provider_of(s).capabilities.runs_locally]
    for site in cloud:
        names = [site.credentials.secret] if site.credentials.secret else []
        for name in [*names, *provider_of(site).secret_names(site)]:
            wanted.setdefault(name, f"site {site.name}")
    if cloud:  # the bootstrap writes the restic password and the repositories' keys
        from deplat.stacks.bootstrap import backup_secrets

        for name in backup_secrets(spec):
            wanted.setdefault(name, "backups")
    gaps = [
        Gap("secret", n, who, _set_fix(n, secrets)) for n, who in wanted.items() if secrets.get(n) is None
    ]
    short = {g.needed_by for g in gaps}
    for site in cloud:
        if f"site {site.name}" in short:
            continue  # its missing secret already says it
        ok, reason = provider_of(site).check_credentials(site, secrets, spec_dir=spec.base_dir)
        if not ok:
            gaps.append(
                Gap("credentials", f"site {site.name}", f"site {site.name}", secrets.masker.text(reason))
            )
    return gaps


def dns_secret_names(entry: DnsProvider) -> list[str]:
    names = [entry.credentials.secret] if entry.credentials.secret else []
    names += [v for k, v in entry.options.items() if k.endswith("secret") and isinstance(v, str)]
    return list(dict.fromkeys(names))


def dns_gaps(spec: Spec, secrets: SecretStore) -> list[Gap]:
    """Secrets the spec's DNS providers need that are not set."""
    gaps = []
    for entry in spec.dns:
        for name in dns_secret_names(entry):
            if secrets.get(name) is None:
                gaps.append(Gap("secret", name, f"DNS provider {entry.name}", _set_fix(name, secrets)))
    return gaps


def passphrase_gap(spec: Spec, sites: Sequence[Site], secrets: SecretStore, *, can_ask: bool) -> Gap | None:
    """The state passphrase, when cloud sites need it, none is set and nobody can be asked."""
    from deplat.engine import passphrase
    from deplat.providers import provider_of

    if can_ask or all(not provider_of(s).capabilities.pulumi_program for s in sites):
        return None
    if passphrase.source(spec, secrets) is not None:
        return None
    wanted = spec.state.passphrase.env or "DEPLAT_PASSPHRASE"
    fix = f"export {wanted}=... (or set state.passphrase.file in the spec); never written to disk"
    return Gap("passphrase", "state passphrase", "the cloud sites' state", fix)


def gaps(
    spec: Spec, sites: Sequence[Site], secrets: SecretStore, *, can_ask: bool, dns: bool = False
) -> list[Gap]:
    """Everything missing for ``sites`` (and the DNS providers, with ``dns``), in a stable order:
    SDKs, secrets and credentials, the passphrase."""
    found = sdk_gaps(spec, sites, dns=dns) + secret_gaps(spec, sites, secrets)
    if dns:
        seen = {g.name for g in found if g.kind == "secret"}
        found += [g for g in dns_gaps(spec, secrets) if g.name not in seen]
    gap = passphrase_gap(spec, sites, secrets, can_ask=can_ask)
    return [*found, gap] if gap else found


def require(
    operation: str,
    spec: Spec,
    sites: Sequence[Site],
    secrets: SecretStore,
    *,
    can_ask: bool,
    dns: bool = False,
) -> None:
    """Raise ``MissingInputs`` listing every gap; return when nothing is missing."""
    found = gaps(spec, sites, secrets, can_ask=can_ask, dns=dns)
    if found:
        raise MissingInputs(operation, found)


def require_sdks(operation: str, spec: Spec, sites: Sequence[Site], *, dns: bool = False) -> None:
    """Only the SDKs (commands that read secrets as they go, e.g. ``dns sync``, ``plan``)."""
    found = sdk_gaps(spec, sites, dns=dns)
    if found:
        raise MissingInputs(operation, found)


# Extras of features rather than providers: the extra, and the top-level modules it installs.
FEATURE_EXTRAS: dict[str, tuple[str, ...]] = {"certs": ("acme", "josepy", "cryptography")}


def require_feature(operation: str, extra: str) -> None:
    """The extra a feature needs (``certs``), as one message naming it when it is missing."""
    gap = _extra_gap(extra, FEATURE_EXTRAS[extra], f"`deplat {operation}`")
    if gap:
        raise MissingInputs(operation, [gap])


def extra_for_module(module: str) -> str | None:
    """The extra that installs ``module`` (a top-level or dotted name): the one extra declaring it,
    ``cloud`` when several do (``pulumi``), None when none does."""
    from deplat import dns
    from deplat.providers import registry

    owners: list[Any] = list(registry().values())
    owners += [module.Backend for module in dns.registry().values()]
    extras = {extra for extra, modules in FEATURE_EXTRAS.items() if module.split(".")[0] in modules}
    extras |= {
        owner.extra
        for owner in owners
        for declared in owner.sdk_modules
        if owner.extra
        and (module == declared or module.startswith(declared + ".") or declared.startswith(module + "."))
    }
    if not extras:
        return None
    return extras.pop() if len(extras) == 1 else "cloud"


def doctor_checks(spec: Spec, secrets: SecretStore, *, can_ask: bool) -> list[Any]:
    """``deplat doctor``'s view of the same gaps, as checks: the SDKs, every secret of the spec
    (services, sites, DNS providers) and the state passphrase. Credentials per site are the
    engine's own checks (``deplat.engine.doctor``), so they are not repeated here."""
    from deplat.engine.doctor import Check
    from deplat.providers import provider_of

    checks = [
        Check(f"SDK {g.name}", False, f"not installed ({g.needed_by})", g.fix)
        for g in sdk_gaps(spec, spec.sites, dns=True)
    ]
    missing = [g for g in secret_gaps(spec, spec.sites, secrets) if g.needed_by.startswith("service ")]
    seen = {g.name for g in missing}  # sites' own secrets: the engine's credentials checks say them
    missing += [g for g in dns_gaps(spec, secrets) if g.name not in seen]
    checks += [Check(f"secret {g.name}", False, f"not set ({g.needed_by} needs it)", g.fix) for g in missing]
    if not missing:
        total = len(
            {n for svc in spec.services.values() for n in svc.secrets}
            | {n for d in spec.dns for n in dns_secret_names(d)}
        )
        checks.append(Check("secrets", True, f"all {total} set" if total else "the spec names none"))
    cloud = [s for s in spec.sites if provider_of(s).capabilities.pulumi_program]
    if cloud:
        from deplat.engine import passphrase

        where = passphrase.source(spec, secrets)
        if where is not None:
            checks.append(Check("state passphrase", True, f"from {where}"))
        else:
            gap = passphrase_gap(spec, cloud, secrets, can_ask=False)
            fix = gap.fix if gap else ""
            detail = "not set; `deplat up` asks for it at a terminal" if can_ask else "not set"
            checks.append(Check("state passphrase", False, detail, fix, required=not can_ask))
    return checks
