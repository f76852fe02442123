"""Is a port a local site is about to open already taken by a process that is not the site's own?"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.local import sitestate
from deplat.local.launch import live_services
from deplat.providers.local import address

if TYPE_CHECKING:
    from deplat.spec.model import Site, Spec


def port_conflict(spec: Spec, site: Site, site_dir: Path) -> str | None:
    """Why a TCP port of a service the site does not already run cannot be bound, or None."""
    live = live_services(site_dir) if sitestate.supervisor_pid(site_dir) else None
    host = address(site, spec)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for name, svc in spec.services.items():
        if (live or {}).get(name, {}).get("state") == "running":
            continue  # its port is ours
        for port in svc.ports:
            if port.protocol != "tcp":
                continue
            with socket.socket(family, socket.SOCK_STREAM) as probe_socket:
                probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe_socket.bind((host, port.port))
                except OSError as exc:
                    return (
                        f"service {name}: {host}:{port.port} is not available ({exc.strerror}); "
                        "another process listens there (another app, or a site of another spec)"
                    )
    return None
