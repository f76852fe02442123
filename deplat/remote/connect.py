"""Open an SSH connection to a cloud site: its address, the app's key, its host key, its layout.

The address is the site's public IPv4 (the ``ipv4`` output of its Pulumi stack, through the site
driver); the user is ``root`` (the bootstrap sets ``disable_root: false`` and puts the app's public
key in root's ``authorized_keys``: key only, never a password); the port is 22. A site's outputs may
name another port or a host key to pin (``ssh_port``, ``ssh_host_key``); otherwise the host key is
recorded on first contact in ``.deplat/ssh/known_hosts`` and required from then on.

The app's key: the secret ``DEPLAT_SSH_KEY`` when set (nothing on disk), else the key pair under
``.deplat/ssh/``, encrypted with the state passphrase, made on first use (``deplat.transport.keys``).

``Layout`` says where the bootstrap put things on the VM (``stacks/vm_layout.py``). Tests point it
at a folder of their own and run the commands against a real ``sshd`` on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deplat.errors import OperationFailed
from deplat.stacks.vm_layout import BACKUP_CONF, CONFIG_DIR, DATA_DIR
from deplat.transport.keys import SECRET_NAME, AppKey, KnownHosts, from_secret, load_or_create

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Site, Spec
    from deplat.transport.base import Transport


@dataclass(frozen=True)
class Endpoint:
    """Where a site's SSH server answers."""

    host: str
    port: int = 22
    user: str = "root"
    host_key: str | None = None  # an OpenSSH public key line to pin; None: trust on first use


@dataclass(frozen=True)
class Layout:
    """Where things live on a cloud site's VM (see ``stacks/bootstrap.py``)."""

    data_dir: str = DATA_DIR  # <data_dir>/<service>/<volume>: the data volume's mount
    config_dir: str = CONFIG_DIR  # <config_dir>/<service>.env (0600)
    restic_dir: str = BACKUP_CONF  # restic.env, repo-NN.env, pre-<service>
    unit_dir: str = "/etc/systemd/system"
    caddy_dir: str = "/etc/caddy"
    sbin_dir: str = "/usr/local/sbin"  # the bootstrap's scripts (deplat-backup, deplat-restore)
    tls_dir: str = "/etc/deplat/tls"  # the app's certificate and key, installed by deplat
    systemctl: tuple[str, ...] = ("systemctl",)
    journalctl: tuple[str, ...] = ("journalctl",)
    docker: tuple[str, ...] = ("docker",)
    service_host: str = "127.0.0.1"  # where the services' ports answer on the VM (health checks)

    def unit(self, service: str) -> str:
        """The systemd unit that runs ``service``'s container."""
        return f"deplat-{service}.service"

    def container(self, service: str) -> str:
        return f"deplat-{service}"

    def service_data(self, service: str) -> str:
        return f"{self.data_dir}/{service}"

    def env_file(self, service: str) -> str:
        return f"{self.config_dir}/{service}.env"


@dataclass
class RemoteSite:
    """One cloud site's VM: the transport to it and where things are on it. Close it when done
    (or use it as a context manager)."""

    site: str
    transport: Transport
    layout: Layout = field(default_factory=Layout)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def app_key(spec: Spec, secrets: SecretStore) -> AppKey:
    """The app's SSH key pair, decrypted in memory (made and saved encrypted on first use)."""
    value = secrets.get(SECRET_NAME)
    if value:
        return from_secret(value, spec.app)
    from deplat.engine import passphrase
    from deplat.paths import paths

    where = paths(spec)
    return load_or_create(
        spec.app, where.ssh_private_key, where.ssh_public_key, passphrase.resolve(spec, secrets)
    )


def endpoint_of(site: Site, outputs: dict[str, Any]) -> Endpoint:
    """The site's SSH endpoint from its stack outputs (``ipv4``, optional ``ssh_port``,
    ``ssh_host_key``); ``OperationFailed`` when the site has no address (not up)."""
    ipv4 = outputs.get("ipv4")
    host = ipv4[0] if isinstance(ipv4, list) and ipv4 else ipv4
    if not isinstance(host, str) or not host:
        raise OperationFailed(
            f"site {site.name} has no address to reach over SSH (is it up?)",
            hint=f"deplat status shows the sites that run; deplat up --site {site.name} stands it up",
        )
    port = outputs.get("ssh_port") or 22
    key = outputs.get("ssh_host_key")
    return Endpoint(host=host, port=int(port), host_key=key if isinstance(key, str) and key else None)


def open_site(
    spec: Spec,
    site: Site,
    secrets: SecretStore,
    *,
    endpoint: Endpoint | None = None,
    layout: Layout | None = None,
    connect_timeout: float = 10.0,
) -> RemoteSite:
    """A ``RemoteSite`` for ``site``. ``endpoint``: where to connect (default: from the site's
    stack outputs through its driver). Connects lazily, on the first command."""
    from deplat.paths import paths
    from deplat.transport.ssh import SshTransport

    if endpoint is None:
        from deplat.sites import driver_for

        endpoint = endpoint_of(site, driver_for(spec, site, secrets).status(site).outputs)
    transport = SshTransport(
        endpoint.host,
        app_key(spec, secrets),
        KnownHosts(paths(spec).known_hosts),
        port=endpoint.port,
        user=endpoint.user,
        host_key=endpoint.host_key,
        connect_timeout=connect_timeout,
    )
    return RemoteSite(site.name, transport, layout or Layout())
