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

    ``secrets`` is None for offline plans: secret values are then placeholders (the user data is
    secret either way). With a store, every service secret must be set, else ``InputError``.
    """

    spec: Spec
    site: Site
    secrets: SecretStore | None = None
    purge_data: bool = False
    _secret_values: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.secrets is not None:
            for svc in self.spec.services.values():
                for name in svc.secrets:
                    self._secret_values[name] = self.secrets.require(name, f"a secret of app {self.app}")
            for name in backup_secrets(self.spec):  # the restic password, the repositories' keys
                self._secret_values[name] = self.secrets.require(name, f"the backups of app {self.app}")
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
        return f"{self.site.name}-{part}"[:limit].rstrip("-")

    def bucket_name(self) -> str:
        """Logical name of the backup bucket: app and site, short enough for every provider (S3 and
        GCS allow 63 characters, Pulumi appends 8)."""
        return f"{self.app}-{self.site.name}-backups"[:54].rstrip("-")

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
        return render(self.spec, self.site, ProviderBits(data_device), self._secret_values)

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


def kept_on_destroy(site: Site) -> list[str]:
    """What ``deplat destroy`` leaves in the site's cloud account: the data the program marks
    ``retain_on_delete`` (Pulumi forgets it, the provider keeps it and bills for it)."""
    from deplat.providers import provider_of

    capabilities = provider_of(site).capabilities
    if not capabilities.pulumi_program:
        return []
    kept = ["data volume"] if capabilities.has_vm else []
    return kept + (["backup bucket"] if capabilities.object_storage else [])


def build(spec: Spec, site: Site, secrets: SecretStore | None) -> dict[str, Any]:
    """Create the site's resources (inside a running Pulumi program) and return its outputs."""
    from deplat.providers import provider_of

    ctx = SiteContext(spec, site, secrets)
    outputs: Mapping[str, Any] | None = provider_of(site).build_site(ctx)
    if outputs is None:
        raise InputError(f"{site.provider.value} sites have no Pulumi program")
    return {k: v for k, v in outputs.items() if v is not None}


def program(spec: Spec, site: Site, secrets: SecretStore | None) -> Callable[[], None]:
    """The inline Pulumi program of ``site``: builds it and exports its outputs (see ``OUTPUTS``)."""

    def run() -> None:
        import pulumi

        for key, value in build(spec, site, secrets).items():
            pulumi.export(key, value)

    return run
