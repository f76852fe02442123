"""HTTP health checks of a local site's services, straight to the loopback address.

``http.client`` rather than a full client: no proxy settings from the environment, no resolver, no
import cost, one short connection per check.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from deplat.local.runs import url_host


@dataclass(frozen=True)
class Check:
    host: str
    port: int
    path: str = "/"
    expect: int = 200
    timeout: float = 2.0

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}{self.path}"


def probe(check: Check, timeout: float | None = None) -> tuple[bool, str]:
    """(ok, reason): ok when the GET answers the expected status within the timeout."""
    conn = http.client.HTTPConnection(check.host, check.port, timeout=timeout or check.timeout)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "deplat-health"})
        status = conn.getresponse().status
    except ConnectionRefusedError:
        return False, "connection refused"
    except TimeoutError:
        return False, "timed out"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    if status != check.expect:
        return False, f"HTTP {status}, expected {check.expect}"
    return True, f"HTTP {status}"
