"""The Hetzner Cloud API through Hetzner's own client (hcloud-python), held to deplat's deadlines.

Used by the Hetzner DNS backend (``deplat.dns.hcloud``: zones and RRSets) and the Hetzner hosting
provider's control-plane check (``deplat.providers.hcloud``). ``hcloud`` is imported only inside
``client()``: importing this module costs nothing.

``client(token, endpoint, deadline, request_timeout)`` gives an ``hcloud.Client`` whose every
request (action polls included) ends by the deadline: each request's timeout is the time left,
at most ``request_timeout``, and a request due after the deadline raises ``OutOfTime``. The
vendor client's own retries (up to 5, with a backoff of up to 60 s, for timeouts and the codes
``conflict``, ``rate_limit_exceeded``, ``bad_gateway``, ``timeout`` and HTTP 502/504) are turned
off: no deadline bounds them, and those answers are ``transient`` here, so the caller (the
failover, the watcher) decides whether to try again. Both knobs are attributes of hcloud-python's
``ClientBase`` (2.x) that its constructor does not take; tests pin them (a silent API answers
within the request timeout; a running action is polled only until the deadline).

``wait(action, deadline, what)`` waits for an asynchronous action (``BoundAction``) until it
succeeds; an action that fails raises ``hcloud.actions.ActionFailedException``, one still running
at the deadline raises ``OutOfTime``.

``error_class(code, message)``: an ``APIException``'s (``code`` is the API's error code, or the HTTP
status when the answer carried no error JSON) or a failed action's error as an ``ErrorClass``,
through ``ERROR_TABLE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from deplat.errors import ErrorClass
from deplat.providers.base import ErrorRow, classify_with, status_class

if TYPE_CHECKING:
    from hcloud import Client
    from hcloud.actions import BoundAction

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"

# hcloud-go (hcloud/error.go, ``Error.Error``) formats an API error as "<message> (<code>)", or
# "<message> (<code>, <correlation id>)" when the answer carried one, which is what the engine
# shows; hcloud-python's ``APIException`` says the same. ``_code`` matches a code in both forms.
# One row per documented code that matters here; the codes and their meanings are hcloud-go's
# ``ErrorCode`` constants (the Hetzner Cloud API reference, "Errors"). The API has no code for a
# blocked account: its words are matched instead.
_HCLOUD_GO = "hcloud-go hcloud/error.go ErrorCode constants (Hetzner Cloud API reference, Errors)"
_HCLOUD_TEXTS = "Hetzner's texts for a blocked account (support answers quoted in hcloud-go issues)"
_GO_NET = "hcloud-go's transport errors (Go net/http, crypto/tls)"


def _code(*codes: str) -> str:
    """A regex for hcloud-go's "(<code>)" or "(<code>, <correlation id>)"."""
    return r"\((?:" + "|".join(codes) + r")(?:, [^)]*)?\)"


ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(
        "account (is|has been) (blocked|locked|suspended|disabled)", ErrorClass.SUSPENDED, _HCLOUD_TEXTS
    ),
    # "The resource is locked. The caller should contact support": an administrative lock, the
    # closest documented signal of a provider cutting a customer off
    ErrorRow(_code("resource_locked"), ErrorClass.SUSPENDED, _HCLOUD_GO + ": resource_locked"),
    # "Request was made with an invalid or unknown token"
    ErrorRow(
        _code("unauthorized") + "|unable to authenticate", ErrorClass.FORBIDDEN, _HCLOUD_GO + ": unauthorized"
    ),
    ErrorRow(
        _code("forbidden") + "|insufficient permissions", ErrorClass.FORBIDDEN, _HCLOUD_GO + ": forbidden"
    ),
    # "The token is only allowed to perform GET requests"
    ErrorRow(_code("token_readonly"), ErrorClass.FORBIDDEN, _HCLOUD_GO + ": token_readonly"),
    ErrorRow(
        _code("protected"), ErrorClass.FORBIDDEN, _HCLOUD_GO + ": protected (delete/rebuild protection)"
    ),
    # "An error during the placement occurred" / "Resource currently unavailable" / "There is no
    # volume space left in the given location": not here, not now; another location may have room
    ErrorRow(_code("placement_error"), ErrorClass.CAPACITY, _HCLOUD_GO + ": placement_error"),
    ErrorRow(_code("resource_unavailable"), ErrorClass.CAPACITY, _HCLOUD_GO + ": resource_unavailable"),
    ErrorRow(
        _code("no_space_left_in_location"), ErrorClass.CAPACITY, _HCLOUD_GO + ": no_space_left_in_location"
    ),
    # "Item is locked (Another action is running)" / "The resource has changed during the request"
    ErrorRow(_code("locked", "conflict"), ErrorClass.TRANSIENT, _HCLOUD_GO + ": locked, conflict"),
    ErrorRow(
        _code("rate_limit_exceeded", "limit_reached"),
        ErrorClass.TRANSIENT,
        _HCLOUD_GO + ": rate_limit_exceeded",
    ),
    # "Error within the API backend" / "Generic service error" / "Cannot perform operation due to
    # maintenance" / "The request could not be answered by the API backend / in time, please retry"
    # / "Robot was not available" / "Unknown error"
    ErrorRow(
        _code(
            "server_error",
            "service_error",
            "maintenance",
            "bad_gateway",
            "timeout",
            "robot_unavailable",
            "unknown_error",
        ),
        ErrorClass.TRANSIENT,
        _HCLOUD_GO + ": server_error, service_error, maintenance, bad_gateway, timeout, robot_unavailable, "
        "unknown_error",
    ),
    # primary_ip_assigned / volume_already_attached (a create-before-delete replacement of the
    # server holding them), invalid_server_type ("does not fit ... or is deprecated"),
    # invalid_input, resource_limit_exceeded, not_found, uniqueness_error: fatal, the default
    ErrorRow(
        "connection reset|i/o timeout|TLS handshake timeout|status code 5\\d\\d",
        ErrorClass.TRANSIENT,
        _GO_NET,
    ),
)


class Deadline(Protocol):
    """What ``client`` needs of a deadline (``deplat.dns.base.Deadline`` is one)."""

    def remaining(self) -> float: ...

    def timeout(self, cap: float | None = None) -> float: ...


class OutOfTime(Exception):
    """The deadline passed before a request to the Hetzner Cloud API could start."""


def client(token: str, endpoint: str, deadline: Deadline, request_timeout: float) -> Client:
    """An ``hcloud.Client`` on ``endpoint`` whose requests all end by ``deadline``."""
    import requests
    from hcloud import Client, exponential_backoff_function

    class BoundedSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            if deadline.remaining() <= 0:
                raise OutOfTime(f"no time left for {method!s} {url!s}")
            kwargs["timeout"] = deadline.timeout(request_timeout)
            return super().request(str(method), url, *args, **kwargs)

    # between polls of a running action: 0.1 s, doubling, at most 1 s; never past the deadline
    backoff = exponential_backoff_function(base=0.1, multiplier=2, cap=1.0)

    def poll_interval(retries: int) -> float:
        return max(0.0, min(backoff(retries), deadline.remaining()))

    api = Client(
        token,
        api_endpoint=endpoint.rstrip("/"),
        application_name="deplat",
        poll_interval=poll_interval,
        poll_max_retries=1_000_000,  # the deadline ends the wait, not a count
    )
    base = api._client  # hcloud-python's ClientBase: its session and retry count (see the module doc)
    base._session = BoundedSession()
    base._retry_max_retries = 0
    return api


def wait(action: BoundAction) -> None:
    """Wait until ``action`` has finished (polls bounded by the client's deadline); raises
    ``ActionFailedException`` when it failed, ``OutOfTime`` when the deadline came first."""
    from hcloud.actions import ActionFailedException

    if action.status == "success":  # finished already when the API answered
        return
    if action.status == "error":
        raise ActionFailedException(action=action)
    action.wait_until_finished()


def error_class(code: str | int, message: str) -> ErrorClass:
    """The class of an API error (an ``APIException``'s or a failed action's ``code`` and
    ``message``): its code through ``ERROR_TABLE``; an answer without the API's error JSON (the
    code is then the HTTP status) by its words, then its status."""
    if isinstance(code, int):
        return status_class(classify_with(ERROR_TABLE, message), code)
    return classify_with(ERROR_TABLE, f"{message} ({code})")


def describe(exc: BaseException) -> str:
    """A one-line account of a failed call (an ``APIException`` reads "<message> (<code>...)")."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
