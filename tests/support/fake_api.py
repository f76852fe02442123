"""A scripted HTTP API on loopback: each path prefix answers a set status and body, or never answers.

    with fake_api() as api:
        api.answer(403, '{"error": ...}', path="/v1/servers")
        api.hang(path="/slow")            # accepts, reads the request, never answers
        ... api.url ...                   # http://127.0.0.1:PORT
        api.requests                      # [(method, path, headers, body)] seen so far

The server runs in a thread, binds port 0, and is stopped (hanging handlers released) on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_LIMIT = 10.0  # seconds a "never answering" handler waits at most before it gives up


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    hang: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApi:
    url: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def answer(
        self,
        status: int,
        body: str | bytes = b"{}",
        *,
        path: str = "/",
        content_type: str = "application/json",
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.answers[path] = Answer(status, data, content_type)

    def hang(self, *, path: str = "/") -> None:
        self.answers[path] = Answer(hang=True)

    def pick(self, path: str) -> Answer:
        matches = [prefix for prefix in self.answers if path.startswith(prefix)]
        return self.answers[max(matches, key=len)] if matches else Answer(404, b'{"error": "no route"}')


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            api.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            answer = api.pick(self.path)
            if answer.hang:
                api.stop.wait(HANG_LIMIT)
                self.close_connection = True
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = _serve  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
