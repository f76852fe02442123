"""guestbook: a tiny web app with persistent data, the app deplat's drills move between sites.

    python app.py --host 127.0.0.1 --port 8080 --data ./data

- ``GET /``          the entries as HTML, with a form to sign
- ``GET /entries``   the entries as JSON
- ``POST /entries``  add one (JSON ``{"name": ..., "message": ...}`` or a form post)
- ``GET /healthz``   ``{"ok": true, "entries": N, "site": ...}`` once the data dir is readable

Entries are appended to ``DATA/entries.jsonl`` and fsynced before the answer, so every entry
that was acknowledged survives a crash or a restart. Standard library only.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

MAX_BODY = 64 * 1024


class Book:
    """Append-only entries in one JSONL file."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "entries.jsonl"
        self.lock = threading.Lock()
        self.entries: list[dict[str, object]] = []
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self.entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash mid-write: it was never acknowledged

    def add(self, name: str, message: str) -> dict[str, object]:
        with self.lock:
            entry = {"id": len(self.entries) + 1, "name": name, "message": message, "at": time.time()}
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.entries.append(entry)
            return entry


def make_handler(book: Book, site: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "guestbook/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: object) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._json(200, {"ok": True, "entries": len(book.entries), "site": site})
            elif self.path == "/entries":
                self._json(200, book.entries)
            elif self.path == "/":
                rows = "".join(
                    f"<li><b>{html.escape(str(e['name']))}</b>: {html.escape(str(e['message']))}</li>"
                    for e in book.entries
                )
                page = (
                    f"<!doctype html><title>guestbook</title><h1>guestbook</h1><p>served by {site}</p>"
                    f"<ul>{rows}</ul><form method=post action=/entries>"
                    "<input name=name placeholder=name> <input name=message placeholder=message>"
                    "<button>sign</button></form>"
                )
                self._send(200, page.encode(), "text/html; charset=utf-8")
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/entries":
                self._json(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(413, {"error": "too large"})
                return
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._json(400, {"error": "invalid JSON"})
                    return
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
            if not isinstance(body, dict) or not str(body.get("message", "")).strip():
                self._json(400, {"error": "a message is required"})
                return
            entry = book.add(str(body.get("name") or "anonymous")[:100], str(body["message"])[:1000])
            self._json(201, entry)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data", default="./data")
    parser.add_argument("--site", default=os.environ.get("DEPLAT_SITE", "unknown"))
    args = parser.parse_args()
    book = Book(Path(args.data))
    server = ThreadingHTTPServer((args.host, args.port), make_handler(book, args.site))
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
