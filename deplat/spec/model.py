"""The app spec, v1: the typed model of ``deplat.yaml``.

Every other part of deplat reads this model. It holds names of secrets, never their values:
values are looked up at run time (see ``deplat.secrets``).

Field descriptions double as the JSON Schema's documentation (``deplat schema``), so editors
using yaml-language-server show them on hover.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

# A DNS-label-like name: sites, services, DNS providers and volumes are named with these.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,40}[a-z0-9]$|^[a-z]$"
Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(description="lower-case letters, digits and '-', starting with a letter"),
]
# The name of a secret: an environment variable name. Its value is looked up at run time.
SecretName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$"),
    Field(description="name of a secret (an environment variable name, e.g. DB_PASSWORD)"),
]
Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]


class Strict(BaseModel):
    """Every section rejects unknown keys, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def _hosting_providers() -> dict[str, str]:
    from deplat import providers

    return {name: name for name in providers.names()}


if TYPE_CHECKING:

    class Provider(StrEnum):
        """A hosting provider's name; the members are those ``deplat.providers`` finds."""

else:
    # one member per provider module in ``deplat.providers``: adding a module adds a member
    Provider = StrEnum("Provider", _hosting_providers(), module=__name__)


class Role(StrEnum):
    primary = "primary"
    warm = "warm"
    cold = "cold"


def _dns_kinds() -> dict[str, str]:
    from deplat import dns

    return {kind: kind for kind in dns.kinds()}


if TYPE_CHECKING:

    class DnsProviderKind(StrEnum):
        """A DNS provider's kind; the members are those ``deplat.dns`` finds."""

else:
    # one member per DNS provider module in ``deplat.dns``: adding a module adds a member
    DnsProviderKind = StrEnum("DnsProviderKind", _dns_kinds(), module=__name__)


class ServicePort(Strict):
    port: Port = Field(description="port the service listens on")
    public: bool = Field(False, description="open to the internet and served on the domain's names")
    protocol: Literal["tcp", "udp"] = "tcp"


class Volume(Strict):
    name: Name = "data"
    path: str = Field(description="absolute mount path inside the container", pattern=r"^/")
    size: int = Field(10, ge=1, le=16384, description="size in GiB")


class HealthCheck(Strict):
    port: Port = Field(description="one of the service's ports")
    path: str = Field("/", pattern=r"^/", description="HTTP path to GET")
    expect: int = Field(200, ge=100, le=599, description="expected HTTP status")
    timeout: PositiveSeconds = Field(2.0, description="seconds before the check counts as failed")


class Resources(Strict):
    cpu: float = Field(0.5, gt=0, le=256, description="CPU cores (a hint for sizing)")
    memory: int = Field(256, ge=16, le=1048576, description="MiB of memory (a hint for sizing)")


class LocalRun(Strict):
    """How the service runs on a ``local`` site: a command run as a supervised process.

    Placeholders: ``{host}`` (the site's loopback address), ``{port}`` (the service's first
    port), ``{data_dir}`` (the service's data dir on this site), ``{site}`` (the site's name).
    """

    command: list[str] = Field(min_length=1, description="argv; placeholders {host} {port} {data_dir} {site}")
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = Field(
        None,
        description="working directory, relative to the spec's folder and inside it, or absolute (the "
        "app's code may be a checkout of its own beside the spec's)",
    )


class Service(Strict):
    image: str = Field(min_length=1, description="container image, e.g. ghcr.io/acme/web:1.4")
    command: list[str] | None = Field(None, description="overrides the image's entrypoint")
    args: list[str] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretName] = Field(
        default_factory=list, description="names of secrets passed as environment variables"
    )
    volumes: list[Volume] = Field(default_factory=list, description="persistent data")
    health: HealthCheck | None = None
    resources: Resources = Field(default_factory=Resources)
    local: LocalRun | None = Field(None, description="how to run this service on a local site")
    pre_backup: list[str] | None = Field(
        None,
        min_length=1,
        description="argv run inside the service's container before each backup, e.g. a database "
        "dump into its volume; the backup is skipped (and retried next time) when it fails",
    )

    @property
    def stateful(self) -> bool:
        return bool(self.volumes)

    @property
    def public_ports(self) -> list[int]:
        return [p.port for p in self.ports if p.public]


class Domain(Strict):
    zone: str = Field(description="the DNS zone, e.g. example.com")
    names: list[str] = Field(min_length=1, description="names to serve, inside the zone")
    ttl: int = Field(60, ge=1, le=86400, description="TTL of the app's records, seconds")


class Credentials(Strict):
    """Where a site's provider credentials come from. Empty: the provider's standard sources
    (AWS profiles and env, GOOGLE_APPLICATION_CREDENTIALS, HCLOUD_TOKEN)."""

    profile: str | None = Field(None, description="AWS profile name")
    file: str | None = Field(
        None,
        description="credentials file (e.g. a GCP service-account JSON); relative to the spec's folder "
        "and inside it, or absolute (credentials belong outside the project, e.g. ~/.config/gcloud/)",
    )
    secret: SecretName | None = Field(None, description="secret holding a token (e.g. HCLOUD_TOKEN)")


def _site_schema(schema: dict[str, Any]) -> None:
    """Each provider's ``options`` model, chosen by ``provider``: editors check and document them."""
    from deplat import providers

    rules = []
    for name, provider in providers.registry().items():
        options = provider.Options.model_json_schema(mode="validation")
        options.pop("title", None)
        rules.append(
            {
                "if": {"properties": {"provider": {"const": name}}},
                "then": {"properties": {"options": options}},
            }
        )
    schema["allOf"] = rules


class Site(Strict):
    model_config = ConfigDict(json_schema_extra=_site_schema)

    name: Name
    provider: Provider
    role: Role
    region: str | None = Field(None, description="AWS region, GCP region, Hetzner location")
    zone: str | None = Field(None, description="availability zone (AWS, GCP)")
    size: str = Field("small", description="small | medium | large, or a provider-native type")
    options: dict[str, Any] = Field(default_factory=dict, description="provider-specific options")
    credentials: Credentials = Field(default_factory=Credentials)


def _dns_provider_schema(schema: dict[str, Any]) -> None:
    """Each DNS provider kind's option names (its module's ``OPTIONS``), chosen by ``provider``."""
    from deplat import dns

    rules = []
    for kind in dns.kinds():
        known = dns.options_of(kind)
        if known is None:
            continue
        options = {"properties": {name: {} for name in known}, "additionalProperties": False}
        rules.append(
            {
                "if": {"properties": {"provider": {"const": kind}}},
                "then": {"properties": {"options": options}},
            }
        )
    if rules:
        schema["allOf"] = rules


class DnsProvider(Strict):
    model_config = ConfigDict(json_schema_extra=_dns_provider_schema)

    name: Name
    provider: DnsProviderKind
    options: dict[str, Any] = Field(default_factory=dict, description="provider-specific options")
    credentials: Credentials = Field(default_factory=Credentials)


class FailoverPolicy(Strict):
    probe_interval: PositiveSeconds = Field(5.0, description="seconds between probes")
    timeout: PositiveSeconds = Field(2.0, description="seconds before a probe fails")
    failures_to_down: int = Field(3, ge=1, le=100, description="consecutive failures to go down")
    successes_to_up: int = Field(2, ge=1, le=100, description="consecutive successes to come back")
    auto: bool = Field(True, description="deplat watch fails over by itself")
    min_interval: float = Field(600.0, ge=0, description="minimum seconds between two failovers")


class RepositoryKind(StrEnum):
    s3 = "s3"  # AWS S3, or any S3-compatible endpoint (set `endpoint`)
    gcs = "gcs"  # Google Cloud Storage, through its S3-compatible XML API with HMAC keys
    hcloud = "hcloud"  # Hetzner Object Storage (S3-compatible)
    local = "local"  # a directory on the machine running the command (local sites, tests)


class BackupRepository(Strict):
    """One restic repository the primary's data goes to. Credentials are secret NAMES."""

    name: Name
    type: RepositoryKind = Field(description="s3 | gcs | hcloud | local")
    bucket: str | None = Field(None, description="bucket name (s3, gcs, hcloud)")
    prefix: str = Field("", description="folder inside the bucket, e.g. the app's name")
    region: str | None = Field(None, description="bucket region (s3), location (hcloud, e.g. fsn1)")
    endpoint: str | None = Field(
        None, pattern=r"^https?://", description="S3 API endpoint URL; default: the type's own"
    )
    path: str | None = Field(None, description="directory (local), relative to the spec")
    access_key: SecretName | None = Field(None, description="secret holding the access key id")
    secret_key: SecretName | None = Field(None, description="secret holding the secret access key")
    operator: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]*$",
        description="who runs this storage when it is none of deplat's providers (e.g. wasabi): "
        "it counts as one provider for the 'two other providers' rule",
    )
    deadline: PositiveSeconds = Field(
        20.0, description="seconds before an unanswering repository is skipped (the others still answer)"
    )

    @property
    def held_by(self) -> str:
        """Who holds the data: a deplat provider's name, ``operator``, the endpoint's host, or local."""
        if self.operator:
            return self.operator
        if self.type is RepositoryKind.s3 and self.endpoint:
            host = self.endpoint.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            return "aws" if host.endswith(".amazonaws.com") else host
        return {"s3": "aws", "gcs": "gcp", "hcloud": "hcloud", "local": "local"}[self.type.value]


class Backups(Strict):
    """Backups of stateful services' data, kept outside the site that made them (restic)."""

    interval: PositiveSeconds = Field(60.0, description="seconds between backups of the primary's data")
    keep: int = Field(24, ge=1, le=10000, description="backups kept per service")
    store: str = Field(
        ".deplat/backups",
        description="where backups go: an object-storage URL (s3://BUCKET/PREFIX) or a directory, "
        "relative to the spec's folder and inside it, or absolute (backups belong on another disk), "
        "never a system folder",
    )
    password: SecretName = Field(
        "DEPLAT_BACKUP_PASSWORD", description="secret holding the restic password of every repository"
    )
    repositories: list[BackupRepository] = Field(
        default_factory=list,
        description="restic repositories; cloud sites need them on at least two providers other "
        "than the site's own",
    )


class Passphrase(Strict):
    """Where the state passphrase comes from; default: DEPLAT_PASSPHRASE or
    PULUMI_CONFIG_PASSPHRASE, else a prompt."""

    env: SecretName | None = None
    file: str | None = Field(
        None,
        description="file holding the passphrase; relative to the spec's folder and inside it, or "
        "absolute (a passphrase belongs outside the project, e.g. /run/secrets/)",
    )


class State(Strict):
    backend: str = Field(
        ".deplat/state",
        description="any Pulumi backend URL, or a directory (the embedded file backend): relative to "
        "the spec's folder and inside it, or absolute (state may live on a disk that is backed up), "
        "never a system folder",
    )
    passphrase: Passphrase = Field(default_factory=Passphrase)


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class Certificates(Strict):
    """The app's TLS certificate: deplat obtains and renews it itself with ACME DNS-01 through the
    spec's DNS providers, so every site holds a valid one before traffic moves to it."""

    acme_directory: str = Field(
        LETS_ENCRYPT, pattern=r"^https://", description="the ACME server's directory URL"
    )
    email: str | None = Field(None, description="contact address given to the ACME server (optional)")
    renew_before_days: int = Field(30, ge=1, le=365, description="renew when fewer days than this remain")
    propagation_seconds: float = Field(
        10.0, ge=0, le=600, description="seconds to wait after writing the challenge records"
    )
    ca_bundle: str | None = Field(
        None, description="CA certificates (PEM file) of a private or test ACME server's HTTPS"
    )


class Drill(Strict):
    """How ``deplat drill`` checks the app's own data, and the budgets it is held to.

    A drill always compares fingerprints of every stateful service's data before the suspension
    and on the new primary after the failover. It writes nothing into the app unless ``write`` is
    set. Commands run on this machine in the spec's folder; ``{url}`` (where the app answers from
    this machine now: the front door, or the serving site's address), ``{host}`` (the app's first
    name, to send as the Host header) and ``{token}`` (one per drill) in an argument are replaced,
    and the same values are in the environment as DEPLAT_DRILL_URL, DEPLAT_DRILL_HOST and
    DEPLAT_DRILL_TOKEN.
    """

    write: list[str] | None = Field(
        None, min_length=1, description="argv run before the suspension: writes marks through the app"
    )
    check: list[str] | None = Field(
        None,
        min_length=1,
        description="argv run after the failover: exit 0 when the app serves what users wrote",
    )
    timeout: PositiveSeconds = Field(30.0, description="seconds each command may take")
    max_rto: PositiveSeconds | None = Field(
        None, description="budget: the drill fails when the RTO is longer (deplat drill --max-rto)"
    )
    max_rpo: PositiveSeconds | None = Field(
        None, description="budget: the drill fails when the RPO is longer (deplat drill --max-rpo)"
    )


class Spec(Strict):
    """deplat.yaml, v1."""

    version: Literal[1] = 1
    app: Name = Field(description="the app's name")
    services: dict[Name, Service] = Field(
        min_length=1, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}}
    )
    domain: Domain
    sites: list[Site] = Field(min_length=1)
    dns: list[DnsProvider] = Field(default_factory=list, description="every DNS provider is written")
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy)
    backups: Backups = Field(default_factory=Backups)
    state: State = Field(default_factory=State)
    certificates: Certificates = Field(default_factory=Certificates)
    drill: Drill = Field(default_factory=Drill)
    secrets_file: str | None = Field(
        None,
        description="file of NAME=value lines holding secret values (keep it out of git): relative to "
        "the spec's folder and inside it, or absolute (secrets belong outside the project)",
    )

    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this spec was loaded from (None when built in code)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Relative paths in the spec (local cwd, secrets_file, state dir) are relative to this."""
        return self._source.parent if self._source else Path.cwd()

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def primary(self) -> Site:
        return next(s for s in self.sites if s.role is Role.primary)

    @property
    def standbys(self) -> list[Site]:
        return [s for s in self.sites if s.role is not Role.primary]
