"""A cloud site's VM, reached over SSH: the app's day-to-day operations on a running site.

Pulumi builds a cloud site; everything after its first boot (stopping and starting services,
restoring data onto a warm standby, pushing changed configuration, installing certificates,
reading logs) goes over SSH with the app's own key (``deplat.transport``). ``connect.open_site``
is the one door: it finds the site's address, the app's key and the recorded host key, and gives a
``RemoteSite`` holding the transport and where things live on the VM (``Layout``).
"""

from deplat.remote.connect import Endpoint, Layout, RemoteSite, app_key, endpoint_of, open_site

__all__ = ["Endpoint", "Layout", "RemoteSite", "app_key", "endpoint_of", "open_site"]
