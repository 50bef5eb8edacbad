"""A hostile webhook receiver: reads the request, then answers one byte at a time,
forever (a per-read timeout never fires). Records when each connection ended."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class TrickleReceiver:
    interval: float = 0.1  # seconds between bytes
    connections: list[tuple[float, float]] = field(default_factory=list)  # (accepted, client gone), monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        assert self._sock is not None
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}{path}"

    def start(self) -> TrickleReceiver:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock:
            self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()  # type: ignore[union-attr]
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        accepted = time.monotonic()
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                reply = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1_000_000
                for i in range(len(reply)):
                    if self._stop.wait(self.interval if i >= 17 else 0):
                        return
                    conn.sendall(reply[i:i + 1])
            except OSError:
                pass  # the sender hung up: what the test waits for
            finally:
                with self.lock:
                    self.connections.append((accepted, time.monotonic()))
