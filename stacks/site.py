"""The Pulumi program of one cloud site, the same for every provider.

``program(spec, site, secrets)`` returns the inline program the engine hands to the Automation API.
It builds a ``SiteContext`` (everything a provider needs, already decided: names, labels, the ports
to open, the data volume's size, the bootstrap) and asks the site's provider module to create its
resources with its ``HostingProvider.build_site(ctx)``, which returns the site's outputs:

- ``ipv4``: the static public IPv4 address; ``ipv6``: the static IPv6 address (Hetzner only);
- ``url``: ``https://<first domain name>`` (None when no service has a public port);
- ``bucket``: the versioned backup bucket's name; ``instance_id``: the VM's id.

Importing this module does not import pulumi; the program does, when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import InputError
from deplat.stacks.bootstrap import ProviderBits, backup_secrets, front, pack, render

if TYPE_CHECKING:
    import pulumi

    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec

OUTPUTS = ("ipv4", "ipv6", "url", "bucket", "instance_id")
HTTPS_FRONT_PORTS = (80, 443)  # Caddy: ACME HTTP-01 challenges and redirects, then HTTPS
DEFAULT_DATA_GIB = 10  # the data volume's size when no service declares a volume
LABEL_APP = "deplat-app"
LABEL_SITE = "deplat-site"


def data_gib(spec: Spec) -> int:
    """Size of a site's data volume in GiB: the sum of the services' volumes (10 when none)."""
    total = sum(v.size for svc in spec.services.values() for v in svc.volumes)
    return total or DEFAULT_DATA_GIB


@dataclass
class SiteContext:
    """What a provider's ``build_site`` needs to know about the site it builds.

    ``secrets`` is None for offline plans: secret values and the app's SSH key are then placeholders
    (the user data is secret either way). With a store, every service secret must be set, else
    ``InputError``, and the app's public key (``deplat.remote.app_key``) goes in the bootstrap.
    """

    spec: Spec
    site: Site
    secrets: SecretStore | None = None
    purge_data: bool = False  # `deplat destroy --purge-data`: data is deleted with the site
    renew_vm: bool = False  # `deplat up --replace-vm`: the new VM gets today's image and bootstrap
    _secret_values: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _authorized_key: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.secrets is not None:
            for svc in self.spec.services.values():
                for name in svc.secrets:
                    self._secret_values[name] = self.secrets.require(name, f"a secret of app {self.app}")
            for name in backup_secrets(self.spec):  # the restic password, the repositories' keys
                self._secret_values[name] = self.secrets.require(name, f"the backups of app {self.app}")
            from deplat.remote import app_key

            self._authorized_key = app_key(self.spec, self.secrets).public_line
        try:  # fail here, as an input error, rather than inside a Pulumi apply
            render(self.spec, self.site, ProviderBits("/dev/null"), self._secret_values)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    @property
    def app(self) -> str:
        return self.spec.app

    @property
    def name(self) -> str:
        return self.site.name

    def resource_name(self, part: str, limit: int = 55) -> str:
        """A logical resource name that also reads well as the physical name Pulumi derives from it
        (it appends 8 characters): ``<site>-<part>``, cut to ``limit``."""
        return resource_name(self.site, part, limit)

    def bucket_name(self) -> str:
        """Logical name of the backup bucket: app and site, short enough for every provider (S3 and
        GCS allow 63 characters, Pulumi appends 8)."""
        return bucket_name(self.spec, self.site)

    def first_boot_only(self, paths: list[str]) -> list[str]:
        """``ignore_changes`` for the VM's first-boot inputs (user data, the resolved image): kept
        as created, unless the operator asked for a new VM. The engine fills ignored inputs from
        the old state even for a replacement, so a new VM would boot the old image and bootstrap."""
        return [] if self.renew_vm else list(paths)

    def force_destroy(self) -> bool | None:
        """A bucket's ``force_destroy``: True when purging (a versioned bucket with backups in it
        cannot be deleted otherwise); None (the provider's default, no diff) the rest of the time."""
        return True if self.purge_data else None

    @property
    def labels(self) -> dict[str, str]:
        """Tags (AWS) or labels (GCP, Hetzner) naming app and site on every resource."""
        return {LABEL_APP: self.app, LABEL_SITE: self.site.name}

    @property
    def public_ports(self) -> list[tuple[int, str]]:
        """(port, protocol) the firewall opens to everyone: the services' public ports, plus 80 and
        443 for the HTTPS front when some service has a public port."""
        ports = {(p.port, p.protocol) for svc in self.spec.services.values() for p in svc.ports if p.public}
        if front(self.spec) is not None:
            ports |= {(p, "tcp") for p in HTTPS_FRONT_PORTS}
        return sorted(ports)

    @property
    def ssh_cidrs(self) -> list[str]:
        """Source ranges allowed to reach SSH (port 22); empty: SSH stays closed."""
        return [str(c) for c in self.site.options.get("ssh_cidrs") or []]

    @property
    def ssh_public_key(self) -> str | None:
        key = self.site.options.get("ssh_public_key")
        return str(key) if key else None

    @property
    def data_gib(self) -> int:
        """Size of the data volume: the sum of the services' volumes."""
        return data_gib(self.spec)

    @property
    def retain_data(self) -> bool:
        """Keep the data volume (and bucket) in the cloud when the stack is destroyed: Pulumi then
        only forgets it. ``deplat destroy --purge-data`` deletes data too."""
        return not self.purge_data

    @property
    def url(self) -> str | None:
        if front(self.spec) is None:
            return None
        return f"https://{self.spec.domain.names[0].rstrip('.')}"

    def bootstrap(self, data_device: str) -> str:
        """The rendered cloud-init text (plain: only for tests and size checks)."""
        return render(
            self.spec,
            self.site,
            ProviderBits(data_device),
            self._secret_values,
            authorized_key=self._authorized_key,
        )

    def user_data(self, data_device: Any, *, packed: bool = False) -> pulumi.Output[str]:
        """The bootstrap as a secret Output; ``data_device`` may be an Output (e.g. from a volume id).
        ``packed``: gzip-compressed and base64-encoded (see ``deplat.stacks.bootstrap``)."""
        import pulumi

        text = pulumi.Output.from_input(data_device).apply(self.bootstrap)
        return pulumi.Output.secret(text.apply(pack) if packed else text)

    def secret_input(self, name: str) -> pulumi.Output[str] | None:
        """A secret value (e.g. object-storage keys) as a secret Output; None in offline plans."""
        import pulumi

        if self.secrets is None:
            return None
        return pulumi.Output.secret(self.secrets.require(name, f"credentials of site {self.site.name}"))


def resource_name(site: Site, part: str, limit: int = 55) -> str:
    """See ``SiteContext.resource_name``."""
    return f"{site.name}-{part}"[:limit].rstrip("-")


def bucket_name(spec: Spec, site: Site) -> str:
    """See ``SiteContext.bucket_name``."""
    return f"{spec.app}-{site.name}-backups"[:54].rstrip("-")


# The site's resources deplat names on its own (``--replace-vm``, ``--purge-data``): what each is
# called in the program. Their types come from the provider's ``RESOURCE_TYPES``.
DATA_KINDS = ("data volume", "backup bucket")
LOCAL_DATA = "data folder"  # a local site's services' data, under .deplat/


def logical_name(spec: Spec, site: Site, kind: str) -> str:
    if kind == "vm":
        return resource_name(site, "vm")
    if kind == "data volume":
        return resource_name(site, "data")
    if kind == "backup bucket":
        return bucket_name(spec, site)
    raise KeyError(kind)


def urn(spec: Spec, site: Site, kind: str) -> str:
    """The Pulumi URN of the site's ``kind`` resource ("vm", "data volume", "backup bucket"): a
    top-level resource of the site's stack (``deplat.engine.workspace``: project = app, stack =
    site). ``KeyError`` when the provider's sites have none."""
    from deplat.providers import provider_of

    typ = provider_of(site).RESOURCE_TYPES[kind]
    return f"urn:pulumi:{site.name}::{spec.app}::{typ}::{logical_name(spec, site, kind)}"


def kept_on_destroy(site: Site) -> list[str]:
    """What ``deplat destroy`` leaves in the site's cloud account: the data the program marks
    ``retain_on_delete`` (Pulumi forgets it, the provider keeps it and bills for it), unless
    ``--purge-data``."""
    from deplat.providers import provider_of

    provider = provider_of(site)
    if provider.capabilities.runs_locally:
        return [LOCAL_DATA]
    if not provider.capabilities.pulumi_program:
        return []
    return [kind for kind in DATA_KINDS if kind in provider.RESOURCE_TYPES]


def data_urns(spec: Spec, site: Site) -> list[str]:
    """URNs of the data ``kept_on_destroy`` in the site's stack (what ``--purge-data`` deletes)."""
    from deplat.providers import provider_of

    types = provider_of(site).RESOURCE_TYPES
    return [urn(spec, site, kind) for kind in kept_on_destroy(site) if kind in types]


def build(
    spec: Spec,
    site: Site,
    secrets: SecretStore | None,
    *,
    purge_data: bool = False,
    renew_vm: bool = False,
) -> dict[str, Any]:
    """Create the site's resources (inside a running Pulumi program) and return its outputs."""
    from deplat.providers import provider_of

    ctx = SiteContext(spec, site, secrets, purge_data=purge_data, renew_vm=renew_vm)
    outputs: Mapping[str, Any] | None = provider_of(site).build_site(ctx)
    if outputs is None:
        raise InputError(f"{site.provider.value} sites have no Pulumi program")
    return {k: v for k, v in outputs.items() if v is not None}


def program(
    spec: Spec,
    site: Site,
    secrets: SecretStore | None,
    *,
    purge_data: bool = False,
    renew_vm: bool = False,
) -> Callable[[], None]:
    """The inline Pulumi program of ``site``: builds it and exports its outputs (see ``OUTPUTS``).
    ``purge_data``: the data is no longer retained on delete; ``renew_vm``: the VM's first-boot
    inputs are no longer ignored (see ``SiteContext``)."""

    def run() -> None:
        import pulumi

        for key, value in build(spec, site, secrets, purge_data=purge_data, renew_vm=renew_vm).items():
            pulumi.export(key, value)

    return run
