"""A cancel request for this process: the CLI sets it on the first Ctrl-C; long waits look at it.

Site drivers check ``requested()`` where they wait (a local site's health checks) and stop with a
"canceled" result instead of waiting on; what they already changed stays (a rerun continues).
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    _requested.clear()
