"""Small fakes of the Cloud DNS and Hetzner Cloud DNS REST APIs on loopback, speaking their JSON.

They keep record sets in memory and enforce what the real APIs enforce that matters here:
the bearer token, Cloud DNS's "deletions must match exactly" (412) and "additions must not
exist" (409), Hetzner's 409 on creating an RRSet that exists, 404 for unknown zones. ``mode``
switches the failure shape: "ok", "suspended" (403 with a suspension body), "unauthorized" (401),
"unavailable" (503), "blackhole" (accept, never answer); ``fail_with`` answers one given error.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-api-token-0123456789"


class FakeApi:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0  # seconds added before every answer: a provider far away
        self.requests: list[tuple[str, str, Any]] = []
        self.user_agents: set[str] = set()
        #: (status, code, message): answer every request with this error (a documented code)
        self.fail_with: tuple[int, str, str] | None = None
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                owner.requests.append((method, url.path, body))
                owner.user_agents.add(self.headers.get("User-Agent", ""))
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.mode == "blackhole":
                    time.sleep(3)
                    return
                status, doc = owner.failure() or owner.authorize(self.headers.get("Authorization", ""))
                if status == 0:
                    with owner.lock:
                        status, doc = owner.handle(method, url.path, parse_qs(url.query), body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorize(self, header: str) -> tuple[int, Any]:
        if header != f"Bearer {TOKEN}" or self.mode == "unauthorized":
            return self.error(401, "unauthorized", "invalid token")
        return 0, None

    def failure(self) -> tuple[int, Any] | None:
        if self.fail_with is not None:
            return self.error(*self.fail_with)
        if self.mode == "suspended":
            return self.error(403, "forbidden", "The account has been suspended (blocked by abuse team)")
        if self.mode == "unavailable":
            return self.error(503, "unavailable", "service unavailable")
        return None

    def error(self, status: int, code: str, message: str) -> tuple[int, Any]:
        raise NotImplementedError

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        raise NotImplementedError


class FakeCloudDns(FakeApi):
    """``/dns/v1/projects/{p}/managedZones/{z}/rrsets``, ``.../changes`` and ``.../changes/{id}``:
    a change is ``pending`` when made and stays so for ``pending_polls`` reads of it (``None``:
    forever), then is ``done`` (its records are held from the start, as Cloud DNS's API does)."""

    def __init__(self, project: str = "guestbook-dns", zone: str = "guestbook-zone") -> None:
        super().__init__()
        self.prefix = f"/dns/v1/projects/{project}/managedZones/{zone}"
        self.rrsets: dict[tuple[str, str], dict[str, Any]] = {}
        self.pending_polls: int | None = 0
        self.changes: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}  # change id -> reads so far

    def finished(self) -> bool:
        """Every change has been read back as done."""
        return all(c["status"] == "done" for c in self.changes.values())

    def put(self, name: str, rdtype: str, values: list[str], ttl: int = 60) -> None:
        self.rrsets[(name + ".", rdtype)] = {
            "name": name + ".",
            "type": rdtype,
            "ttl": ttl,
            "rrdatas": values,
        }

    def values(self, name: str) -> list[str]:
        return sorted(v for (n, _), s in self.rrsets.items() if n == name + "." for v in s["rrdatas"])

    def error(self, status: int, code: str, message: str) -> tuple[int, Any]:
        reason = {403: "accountDisabled", 401: "authError"}.get(status, code)
        return status, {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}}

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if not path.startswith(self.prefix):
            return self.error(
                404, "notFound", "The 'parameters.managedZone' resource named 'x' does not exist."
            )
        rest = path[len(self.prefix) :]
        if method == "GET" and rest == "/rrsets":
            name = query.get("name", [None])[0]
            found = [dict(s) for (n, _), s in sorted(self.rrsets.items()) if name in (None, n)]
            return 200, {"kind": "dns#resourceRecordSetsListResponse", "rrsets": found}
        if method == "POST" and rest == "/changes":
            # int64 fields (ttl) travel as JSON strings, as the client sends them
            for deletion in body.get("deletions", []):
                held = self.rrsets.get((deletion["name"], deletion["type"]))
                if (
                    held is None
                    or held["ttl"] != int(deletion["ttl"])
                    or held["rrdatas"] != deletion["rrdatas"]
                ):
                    return self.error(
                        412, "conditionNotMet", "Precondition not met for 'entity.change.deletions[0]'"
                    )
            deleted = {(d["name"], d["type"]) for d in body.get("deletions", [])}
            for addition in body.get("additions", []):
                key = (addition["name"], addition["type"])
                if key in self.rrsets and key not in deleted:
                    return self.error(
                        409, "alreadyExists", "The resource 'entity.change.additions[0]' already exists"
                    )
            for key in deleted:
                del self.rrsets[key]
            for addition in body.get("additions", []):
                self.rrsets[(addition["name"], addition["type"])] = {
                    "name": addition["name"],
                    "type": addition["type"],
                    "ttl": int(addition["ttl"]),
                    "rrdatas": addition["rrdatas"],
                }
            change_id = str(len(self.changes) + 1)
            self.changes[change_id] = {"kind": "dns#change", "id": change_id, "status": "pending", **body}
            self.polls[change_id] = 0
            return 200, dict(self.changes[change_id])
        polled = re.match(r"^/changes/(\w+)$", rest)
        if method == "GET" and polled:
            change_id = polled.group(1)
            if change_id not in self.changes:
                return self.error(
                    404, "notFound", f"The 'parameters.changeId' resource named '{change_id}' does not exist."
                )
            self.polls[change_id] += 1
            if self.pending_polls is not None and self.polls[change_id] > self.pending_polls:
                self.changes[change_id]["status"] = "done"
            return 200, dict(self.changes[change_id])
        return self.error(404, "notFound", "no such method")


class FakeHetznerDns(FakeApi):
    """``/v1/zones/{zone}/rrsets`` (+ ``/{name}/{type}`` and its actions) of the Hetzner Cloud API,
    and ``/v1/actions/{id}``: every write answers with an action that is ``running`` and stays so
    for ``running_polls`` reads of it (``None``: forever), then is ``success`` (or ``error`` with
    ``action_error``, a (code, message) pair). Errors carry the API's documented codes."""

    def __init__(self, zone: str = "guestbook.test", zone_id: str = "4711") -> None:
        super().__init__()
        self.zone_refs = {zone, zone_id}
        self.rrsets: dict[tuple[str, str], dict[str, Any]] = {}
        self.running_polls: int | None = 0
        self.action_error: tuple[str, str] | None = None
        self.actions: dict[int, dict[str, Any]] = {}
        self.polls: dict[int, int] = {}  # action id -> reads so far

    def put(self, name: str, rdtype: str, values: list[str], ttl: int = 60) -> None:
        self.rrsets[(name, rdtype)] = {
            "id": f"{name}/{rdtype}",
            "name": name,
            "type": rdtype,
            "ttl": ttl,
            "records": [{"value": v, "comment": None} for v in values],
        }

    def values(self, name: str) -> list[str]:
        return sorted(r["value"] for (n, _), s in self.rrsets.items() if n == name for r in s["records"])

    def error(self, status: int, code: str, message: str) -> tuple[int, Any]:
        # the base class's "unavailable" (503) is service_error in the API's documented codes
        code = {"unavailable": "service_error"}.get(code, code)
        return status, {"error": {"code": code, "message": message, "details": {}}}

    def action(self, command: str) -> dict[str, Any]:
        action_id = len(self.actions) + 1
        self.actions[action_id] = {
            "id": action_id,
            "command": command,
            "status": "running",
            "progress": 0,
            "started": "2025-11-10T10:00:00+00:00",
            "finished": None,
            "resources": [],
            "error": None,
        }
        self.polls[action_id] = 0
        return {"action": dict(self.actions[action_id])}

    def poll(self, action_id: int) -> tuple[int, Any]:
        if action_id not in self.actions:
            return self.error(404, "not_found", "action not found")
        self.polls[action_id] += 1
        action = self.actions[action_id]
        if self.running_polls is not None and self.polls[action_id] > self.running_polls:
            if self.action_error is None:
                action.update(status="success", progress=100, finished="2025-11-10T10:00:01+00:00")
            else:
                code, message = self.action_error
                action.update(status="error", progress=100, error={"code": code, "message": message})
        return 200, {"action": dict(action)}

    def finished(self) -> bool:
        """Every action has been seen to finish (read back as success or error)."""
        return all(a["status"] != "running" for a in self.actions.values())

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        polled = re.match(r"^/v1/actions/(\d+)$", path)
        if polled and method == "GET":
            return self.poll(int(polled.group(1)))
        match = re.match(r"^/v1/zones/([^/]+)/rrsets(?:/([^/]+)/([A-Z]+)(/actions/(\w+))?)?$", path)
        if not match or match.group(1) not in self.zone_refs:
            return self.error(404, "not_found", "zone not found")
        _, name, rdtype, _, action = match.groups()
        if name is None:
            if method == "GET":
                names, types = query.get("name"), query.get("type")
                found = [
                    s
                    for (n, t), s in sorted(self.rrsets.items())
                    if (not names or n in names) and (not types or t in types)
                ]
                meta = {"pagination": {"page": 1, "per_page": 50, "total_entries": len(found)}}
                return 200, {"rrsets": found, "meta": meta}
            if method == "POST":
                key = (body["name"], body["type"])
                if key in self.rrsets:
                    return self.error(409, "uniqueness_error", "rrset already exists")
                self.put(
                    body["name"], body["type"], [r["value"] for r in body["records"]], body.get("ttl") or 3600
                )
                return 201, {"rrset": self.rrsets[key], **self.action("create_rrset")}
        key = (name, rdtype)
        if key not in self.rrsets:
            return self.error(404, "not_found", "rrset not found")
        if method == "DELETE" and action is None:
            del self.rrsets[key]
            return 201, self.action("delete_rrset")
        if method == "POST" and action == "set_records":
            self.rrsets[key]["records"] = [{"value": r["value"], "comment": None} for r in body["records"]]
            return 201, self.action("set_rrset_records")
        if method == "POST" and action == "change_ttl":
            self.rrsets[key]["ttl"] = body["ttl"]
            return 201, self.action("change_rrset_ttl")
        return self.error(404, "not_found", "no such action")
