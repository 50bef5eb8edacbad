"""A server-sent-events reader for the push channel's tests and benches: one GET of
/api/stream read in a thread, each event parsed as the browser parses it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: Any
    received: float  # time.time() when its last line arrived


class SseReader:
    def __init__(self, url: str, last_event_id: str | None = None, timeout: float = 30,
                 cookies: dict[str, str] | None = None) -> None:
        self.url = url
        self.cookies = cookies  # a signed-in session's (its own alerts come on its stream only)
        self.headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.timeout = timeout
        self.events: list[SseEvent] = []
        self.comments = 0
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.ended = threading.Event()
        self.answered = threading.Event()
        self._response: requests.Response | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> SseReader:
        self._thread.start()
        if not self.answered.wait(self.timeout):
            raise TimeoutError(f"no answer from {self.url} in {self.timeout} s")
        return self

    def _read(self) -> None:
        try:
            with requests.get(self.url, headers=self.headers, cookies=self.cookies, stream=True,
                              timeout=(5, 120)) as resp:
                self._response = resp
                self.status = resp.status_code
                self.response_headers = dict(resp.headers)
                self.answered.set()
                if resp.status_code != 200:
                    return
                fields: dict[str, str] = {}
                for raw in resp.iter_lines(chunk_size=None, decode_unicode=True):
                    line = raw or ""
                    if line.startswith(":"):
                        self.comments += 1
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    elif fields:
                        if "data" in fields:
                            ev = SseEvent(fields.get("event", "message"), fields.get("id"),
                                          json.loads(fields["data"]), time.time())
                            with self._lock:
                                self.events.append(ev)
                        fields = {}
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by us or by the server
        finally:
            self.answered.set()
            self.ended.set()

    def of(self, kind: str) -> list[SseEvent]:
        with self._lock:
            return [e for e in self.events if e.event == kind]

    def last_id(self) -> str | None:
        with self._lock:
            ids = [e.id for e in self.events if e.id]
        return ids[-1] if ids else None

    def close(self) -> None:
        resp = self._response
        if resp is not None and resp.raw is not None:
            # Shut the socket down to wake the reading thread (closing alone leaves it blocked).
            with contextlib.suppress(AttributeError, OSError):
                resp.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
            resp.close()
        self.ended.wait(10)
