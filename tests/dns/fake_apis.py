"""Small fakes of the Cloud DNS and Hetzner Cloud DNS REST APIs on loopback, speaking their JSON.

They keep record sets in memory and enforce what the real APIs enforce that matters here:
the bearer token, Cloud DNS's "deletions must match exactly" (412) and "additions must not
exist" (409), Hetzner's 409 on creating an RRSet that exists, 404 for unknown zones. ``mode``
switches the failure shape: "ok", "suspended" (403 with a suspension body), "unauthorized" (401),
"unavailable" (503), "blackhole" (accept, never answer).
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
    """``/dns/v1/projects/{p}/managedZones/{z}/rrsets`` and ``.../changes``."""

    def __init__(self, project: str = "guestbook-dns", zone: str = "guestbook-zone") -> None:
        super().__init__()
        self.prefix = f"/dns/v1/projects/{project}/managedZones/{zone}"
        self.rrsets: dict[tuple[str, str], dict[str, Any]] = {}

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
            for deletion in body.get("deletions", []):
                held = self.rrsets.get((deletion["name"], deletion["type"]))
                if held is None or held["ttl"] != deletion["ttl"] or held["rrdatas"] != deletion["rrdatas"]:
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
                    k: addition[k] for k in ("name", "type", "ttl", "rrdatas")
                }
            return 200, {"kind": "dns#change", "id": str(len(self.requests)), "status": "done", **body}
        return self.error(404, "notFound", "no such method")


class FakeHetznerDns(FakeApi):
    """``/v1/zones/{zone}/rrsets`` (+ ``/{name}/{type}`` and its actions) of the Hetzner Cloud API."""

    def __init__(self, zone: str = "guestbook.test", zone_id: str = "4711") -> None:
        super().__init__()
        self.zone_refs = {zone, zone_id}
        self.rrsets: dict[tuple[str, str], dict[str, Any]] = {}

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
        return status, {"error": {"code": code, "message": message, "details": {}}}

    @staticmethod
    def action(command: str) -> dict[str, Any]:
        return {"action": {"id": 1, "command": command, "status": "running", "progress": 0, "error": None}}

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
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
