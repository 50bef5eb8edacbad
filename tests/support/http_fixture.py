"""A local HTTP server that answers like the outside APIs, from recorded responses.

Tests register a handler per path; the handler receives the query string and
returns a Response. Unregistered paths answer 404. Every request is recorded so
tests can count calls (e.g. the Alpha Vantage call budget).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before answering (for timeout tests)
    headers: dict[str, str] = field(default_factory=dict)  # more headers (Set-Cookie, Retry-After, ...)

    @classmethod
    def fixture(cls, name: str, status: int = 200, content_type: str | None = None, delay: float = 0.0) -> Response:
        """A recorded response from tests/fixtures/."""
        if content_type is None:
            content_type = "application/json" if name.endswith(".json") else "application/rss+xml; charset=utf-8"
        return cls(status, (FIXTURES / name).read_bytes(), content_type, delay)


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        """A request header by name, whatever its case (HTTP/2-style clients send lower case)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


Handler = Callable[[Request], Response]


class QuietHandler(BaseHTTPRequestHandler):
    """No access log on stderr (the tests record what they need)."""

    def log_message(self, *args: object) -> None:
        pass


def serve(handler_class: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """Serve on a free port of 127.0.0.1, a daemon thread per request (https with `tls`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shut_down(server: ThreadingHTTPServer | None) -> None:
    if server:
        server.shutdown()
        server.server_close()


@dataclass
class RecordedApi:
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, path: str, handler: Handler | Response) -> None:
        self.routes[path] = handler if callable(handler) else (lambda _req, r=handler: r)

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.requests.clear()

    def calls(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def start(self) -> RecordedApi:
        api = self

        class _H(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = urlsplit(self.path)
                req = Request(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, dict(self.headers))
                with api.lock:
                    api.requests.append(req)
                    handler = api.routes.get(parts.path)
                resp = handler(req) if handler else Response(404, b'{"error": "no recorded response"}')
                if resp.delay:
                    time.sleep(resp.delay)
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.content_type)
                    self.send_header("Content-Length", str(len(resp.body)))
                    for name, value in resp.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first; that was the point

        self.server = serve(_H)
        return self

    def stop(self) -> None:
        shut_down(self.server)
