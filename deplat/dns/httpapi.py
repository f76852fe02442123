"""A JSON-over-HTTPS call for the DNS providers that have a REST API (Cloud DNS, Hetzner).

One place turns transport failures and HTTP statuses into ``DnsError`` classes and conflicts
(409/412) into ``CasConflict``; the provider modules only build URLs and bodies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from deplat.dns.base import CasConflict, Deadline, DnsError, classify_http, short

_SHARED: Any = None
_LOCK = threading.Lock()


class JsonApi:
    """``call(method, path, deadline, ...)`` -> the decoded JSON body (``{}`` for no body)."""

    def __init__(
        self,
        label: str,
        base_url: str,
        headers: Callable[[], dict[str, str]],
        request_timeout: float,
        error_text: Callable[[Any], str] | None = None,
    ) -> None:
        self.label = label
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self.request_timeout = request_timeout
        self._error_text = error_text or (lambda body: str(body))

    def client(self) -> Any:
        """One httpx client for the process (its TLS context costs ~20 ms to build); httpx
        clients are safe to share between threads."""
        global _SHARED
        with _LOCK:
            if _SHARED is None:
                import httpx

                _SHARED = httpx.Client(follow_redirects=False)
            return _SHARED

    def close(self) -> None:
        """Nothing to do: the shared client lives as long as the process."""

    def call(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        what: str,
        *,
        params: Any = None,
        json: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        import httpx

        deadline.check(what)
        timeout = deadline.timeout(self.request_timeout)
        try:
            response = self.client().request(
                method,
                f"{self.base_url}{path}",
                params=params,
                json=json,
                headers=self._headers(),
                timeout=httpx.Timeout(timeout),
            )
        except httpx.TimeoutException:
            raise DnsError(
                f"{self.label} did not answer within {timeout:.2g} s ({what})", "transient"
            ) from None
        except httpx.TransportError as exc:
            raise DnsError(
                f"cannot reach {self.label}: {exc or type(exc).__name__} ({what})", "transient"
            ) from None
        status = response.status_code
        if status < 300:
            return response.json() if response.content else {}
        if missing_ok and status == 404:
            return None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        text = short(self._error_text(body))
        if status in (409, 412):
            raise CasConflict(f"{self.label} answered {status}: {text}; nothing was written")
        error_class = classify_http(status, str(body))
        raise DnsError(f"{self.label} answered HTTP {status}: {text} ({what})", error_class)
