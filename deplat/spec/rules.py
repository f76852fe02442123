"""Rules that span sections of a well-typed spec, and each provider's own option checks.

Each rule reports through the ``Reporter`` with a path, so its message lands on the right line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from deplat.providers import provider_of
from deplat.spec.model import DnsProvider, RepositoryKind, Role, Site, Spec

if TYPE_CHECKING:
    from deplat.spec.loader import Reporter


def check(spec: Spec, report: Reporter) -> None:
    _roles(spec, report)
    _unique_names(spec, report)
    _domain(spec, report)
    _services(spec, report)
    _local_sites(spec, report)
    _paths(spec, report)
    _provider_options(spec, report)
    _backup_repositories(spec, report)


def _roles(spec: Spec, report: Reporter) -> None:
    primaries = [i for i, s in enumerate(spec.sites) if s.role is Role.primary]
    if not primaries:
        report.at(("sites",), "no site has role 'primary'; exactly one must")
        return
    for i in primaries[1:]:
        report.at(
            ("sites", i, "role"),
            f"a second primary ('{spec.sites[i].name}'); exactly one site may be primary, "
            f"'{spec.sites[primaries[0]].name}' already is",
        )
    primary = spec.sites[primaries[0]]
    if len(primaries) > 1:
        return
    others = [s for s in spec.sites if s.role is not Role.primary]
    if not others:
        report.at(
            ("sites",),
            f"only the primary '{primary.name}' is declared: add a warm or cold standby on "
            "another provider, else failing over is impossible",
        )
    elif not provider_of(primary).capabilities.runs_locally and all(
        s.provider is primary.provider for s in others
    ):
        report.at(
            ("sites",),
            f"every standby is on '{primary.provider.value}', like the primary: when that provider "
            "suspends the account failing over is impossible; add a standby on another provider",
        )


def _unique_names(spec: Spec, report: Reporter) -> None:
    sections: list[tuple[str, Sequence[Site | DnsProvider]]] = [("sites", spec.sites), ("dns", spec.dns)]
    for section, items in sections:
        seen: Counter[str] = Counter()
        for i, item in enumerate(items):
            seen[item.name] += 1
            if seen[item.name] == 2:
                report.at((section, i, "name"), f"duplicate name '{item.name}' in {section}")


def _in_zone(name: str, zone: str) -> bool:
    name, zone = name.rstrip(".").lower(), zone.rstrip(".").lower()
    return name == zone or name.endswith("." + zone)


def _domain(spec: Spec, report: Reporter) -> None:
    zone = spec.domain.zone
    for i, name in enumerate(spec.domain.names):
        if not _in_zone(name, zone):
            report.at(("domain", "names", i), f"'{name}' is not inside the zone '{zone}'")
    dupes = [n for n, c in Counter(n.rstrip(".").lower() for n in spec.domain.names).items() if c > 1]
    for name in dupes:
        report.at(("domain", "names"), f"'{name}' is listed twice")


def _services(spec: Spec, report: Reporter) -> None:
    if not any(svc.public_ports for svc in spec.services.values()):
        report.at(
            ("services",),
            "no service has a public port, so the domain's names would serve nothing: "
            "mark at least one port `public: true`",
        )
    for svc_name, svc in spec.services.items():
        base = ("services", svc_name)
        ports = [p.port for p in svc.ports]
        for i, port in enumerate(ports):
            if ports.index(port) != i:
                report.at((*base, "ports", i, "port"), f"port {port} is declared twice")
        if svc.health and svc.health.port not in ports:
            declared = ", ".join(map(str, ports)) or "none"
            report.at(
                (*base, "health", "port"),
                f"health port {svc.health.port} is not one of the service's ports ({declared})",
            )
        names = [v.name for v in svc.volumes]
        for i, name in enumerate(names):
            if names.index(name) != i:
                report.at((*base, "volumes", i, "name"), f"volume name '{name}' is used twice")


def _local_sites(spec: Spec, report: Reporter) -> None:
    local = [i for i, s in enumerate(spec.sites) if provider_of(s).capabilities.runs_locally]
    if not local:
        return
    for svc_name, svc in spec.services.items():
        if svc.local is None:
            site = spec.sites[local[0]].name
            report.at(
                ("services", svc_name),
                f"has no 'local' section, but site '{site}' is local: say how to run it on this machine",
            )
        if svc.local is not None and not svc.ports:
            report.at(("services", svc_name, "local"), "a local service needs at least one port")
    _local_addresses(spec, report)


def _local_addresses(spec: Spec, report: Reporter) -> None:
    """Each local site needs its own loopback address: one pass, the first site keeps it."""
    from deplat.providers.local import addresses

    taken: dict[str, str] = {}  # address -> the first site on it
    by_site = addresses(spec)
    for i, site in enumerate(spec.sites):
        mine = by_site.get(site.name)
        if mine is None:
            continue
        if "address" not in site.options and not _is_ip(mine):
            report.at(
                ("sites", i, "name"),
                f"no default loopback address is left for the local site '{site.name}' ({mine}): "
                "give it options.address",
            )
        elif mine in taken:
            report.at(
                ("sites", i, "options", "address"), f"address {mine} is already used by site '{taken[mine]}'"
            )
        else:
            taken[mine] = site.name


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _paths(spec: Spec, report: Reporter) -> None:
    from deplat.spec import filepaths

    for where, message in filepaths.problems(spec):
        report.at(where, message)


def _provider_options(spec: Spec, report: Reporter) -> None:
    from deplat import dns
    from deplat.providers import option_problems

    for i, site in enumerate(spec.sites):
        for sub, message in option_problems(site, spec):
            report.at(("sites", i, *sub), message)
    for i, provider in enumerate(spec.dns):
        for sub, message in dns.option_problems(provider, spec):
            report.at(("dns", i, *sub), message)


# What each repository type needs besides its name.
_REPOSITORY_NEEDS = {
    RepositoryKind.s3: ("bucket", "access_key", "secret_key"),
    RepositoryKind.gcs: ("bucket", "access_key", "secret_key"),
    RepositoryKind.hcloud: ("bucket", "region", "access_key", "secret_key"),
    RepositoryKind.local: ("path",),
}


def _backup_repositories(spec: Spec, report: Reporter) -> None:
    """Each repository has what its type needs; a cloud site's data leaves for at least two
    providers other than its own, so one suspension never takes the site and its backups."""
    repositories = spec.backups.repositories
    for i, repo in enumerate(repositories):
        for needed in _REPOSITORY_NEEDS[repo.type]:
            if not getattr(repo, needed):
                report.at(("backups", "repositories", i), f"a {repo.type.value} repository needs '{needed}'")
    names = [r.name for r in repositories]
    for i, name in enumerate(names):
        if names.index(name) != i:
            report.at(("backups", "repositories", i, "name"), f"duplicate repository name '{name}'")
    stateful = any(svc.stateful for svc in spec.services.values())
    cloud = [s for s in spec.sites if not provider_of(s).capabilities.runs_locally]
    if not stateful or not cloud:
        return
    if not repositories:
        return  # nothing declared yet: the data layer asks for repositories when a cloud site needs them
    for site in cloud:
        others = {r.held_by for r in repositories} - {site.provider.value, "local"}
        if len(others) < 2:
            held = ", ".join(sorted(others)) or "none"
            report.at(
                ("backups", "repositories"),
                f"site '{site.name}' ({site.provider.value}) needs backups on at least two providers "
                f"other than its own (has: {held}): add a repository on another provider",
            )
