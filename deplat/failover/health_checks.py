"""HTTP health checks of an app's services, addressed by IP, and what a site's health is called.

Each check is bounded in total time (connect + send + the whole answer), so a server that answers
slowly is a "timeout" too; a failed answer that matches a suspension signature
(``deplat.failover.signatures``) is classed "suspended". The system resolver is never used: the
``Host`` header carries the app's name.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from deplat.failover.signatures import Signature, is_suspension

if TYPE_CHECKING:
    import httpx

    from deplat.spec.model import Spec

BODY_LIMIT = 64 * 1024  # bytes of an answer kept for signature matching


class Health(StrEnum):
    healthy = "healthy"
    degraded = "degraded"
    down = "down"
    suspended = "suspended"


@dataclass
class Check:
    """One health check of one service at one address."""

    service: str
    url: str
    ok: bool
    status: int | None = None
    latency: float = 0.0  # seconds
    error: str | None = None
    error_class: str | None = None  # refused | timeout | reset | unreachable | http | suspended | no_address
    address: str = ""
    host: str = ""


def _url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def _error_class(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError):
                return "refused"
            cause = cause.__cause__ or cause.__context__
        return "refused" if "refused" in str(exc).lower() else "unreachable"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "reset"
    return "error"


async def _check(
    client: httpx.AsyncClient,
    service: str,
    address: str,
    host: str,
    port: int,
    path: str,
    expect: int,
    timeout: float,
    signatures: list[Signature],
) -> Check:
    url = _url(address, port, path)
    start = time.monotonic()
    status: int | None = None
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, headers={"Host": host}, timeout=timeout) as answer:
                status = answer.status_code
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) >= BODY_LIMIT:
                        break
    except Exception as exc:  # every failure shape becomes a classified, failed check
        kind = _error_class(exc)
        message = str(exc) or type(exc).__name__
        if kind == "timeout":
            message = f"no answer in {timeout:g}s"
        elif kind == "refused":
            message = "connection refused"
        elif kind == "reset":
            message = f"connection closed without an answer ({message})"
        return Check(service, url, False, status, time.monotonic() - start, message, kind, address, host)
    latency = time.monotonic() - start
    if status == expect:
        return Check(service, url, True, status, latency, None, None, address, host)
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    if is_suspension(status, text, signatures):
        error = f"HTTP {status}: suspension page ({text.strip()[:80]})"
        return Check(service, url, False, status, latency, error, "suspended", address, host)
    error = f"HTTP {status}, expected {expect}"
    return Check(service, url, False, status, latency, error, "http", address, host)


def _client(limit: int) -> httpx.AsyncClient:
    import httpx

    # trust_env=False: no proxies or netrc from the environment; no keep-alive between probes.
    # Probes speak plain http:// to an IP, so TLS settings never apply: verify=False only spares
    # loading the CA bundle (~18 ms) for every probe.
    return httpx.AsyncClient(
        trust_env=False,
        verify=False,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max(limit, 1), max_keepalive_connections=0),
    )


async def checks_at(
    spec: Spec, targets: list[tuple[str, str]], timeout: float, signatures: list[Signature]
) -> list[Check]:
    """Every service's health check at every (address, host) target, concurrently."""
    jobs = []
    services = [(name, svc.health) for name, svc in spec.services.items() if svc.health is not None]
    async with _client(len(services) * len(targets)) as client:
        for address, host in targets:
            for name, health in services:
                assert health is not None
                limit = min(timeout, health.timeout)
                jobs.append(
                    _check(
                        client,
                        name,
                        address,
                        host,
                        health.port,
                        health.path,
                        health.expect,
                        limit,
                        signatures,
                    )
                )
        return list(await asyncio.gather(*jobs))
