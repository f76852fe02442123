"""How deplat runs commands on a site: directly on this machine (local sites) or over SSH (cloud
sites), behind one ``Transport`` interface."""

from deplat.transport.base import (
    CommandTimeout,
    Completed,
    HostKeyMismatch,
    KeyRefused,
    Transport,
    TransportError,
)
from deplat.transport.direct import DirectTransport

__all__ = [
    "CommandTimeout",
    "Completed",
    "DirectTransport",
    "HostKeyMismatch",
    "KeyRefused",
    "Transport",
    "TransportError",
]
