"""A local webhook receiver (stands in for Slack / Discord): records every JSON POST
per path (with the Host header it was sent); per-path status and delay make it fail or
answer slowly. Over https with a server TLS context, recording the SNI name each client sent."""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.support.http_fixture import QuietHandler, serve, shut_down


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    content_type: str
    host: str = ""


@dataclass
class WebhookReceiver:
    received: list[Received] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)  # path -> answer (default 204)
    delay: dict[str, float] = field(default_factory=dict)  # path -> seconds before answering
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    tls: ssl.SSLContext | None = None
    sni: list[str | None] = field(default_factory=list)  # names clients asked for in the TLS hello

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def start(self) -> WebhookReceiver:
        hook = self

        class _H(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if hook.delay.get(self.path):
                    time.sleep(hook.delay[self.path])
                status = hook.status.get(self.path, 204)
                if status < 300:
                    with hook.lock:
                        hook.received.append(Received(self.path, json.loads(raw), self.headers.get("Content-Type", ""),
                                                      self.headers.get("Host", "")))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out first

        if self.tls is not None:
            def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
                with hook.lock:
                    hook.sni.append(name)

            self.tls.sni_callback = record_sni
        self.server = serve(_H, self.tls)
        return self

    def stop(self) -> None:
        shut_down(self.server)
