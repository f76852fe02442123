"""A cloud site's VM, reached over SSH: the app's day-to-day operations on a running site.

Pulumi builds a cloud site; everything after its first boot (stopping and starting services,
restoring data onto a warm standby, pushing changed configuration and taking off services the
spec no longer has, installing certificates, reading logs) goes over SSH with the app's own key
(``deplat.transport``). ``connect.open_site`` is the one door: it finds the site's address, the
app's key and the recorded host key, and gives a ``RemoteSite`` holding the transport and where
things live on the VM (``Layout``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deplat.remote.connect import Endpoint, Layout, RemoteSite, app_key, endpoint_of, open_site

__all__ = ["Endpoint", "Layout", "RemoteSite", "app_key", "endpoint_of", "open_site"]


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: ``connect`` brings asyncssh (~0.15 s), which
    ``deplat validate`` (``deplat.remote.access``) does not need."""
    if name in __all__:
        from deplat.remote import connect

        return getattr(connect, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
