"""Yahoo's streamer as a local websocket server: it takes {"subscribe": [...]} and pushes each
print as Yahoo does, {"type": "pricing", "message": base64 of yfinance's own PricingData}.

    with LocalStreamer() as streamer:           # ws://127.0.0.1:<port>
        streamer.push("AAPL", 201.5, at, day_volume=1200)
        streamer.drop()                          # connections closed, new ones refused
        streamer.restore()
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve
from yfinance.pricing_pb2 import PricingData

REGULAR_MARKET = 1


def pricing_message(symbol: str, price: float, at: datetime, *, day_volume: int, market_hours: int = REGULAR_MARKET,
                    last_size: int = 100) -> str:
    data = PricingData(id=symbol, price=price, time=int(at.timestamp() * 1000), day_volume=day_volume,
                       market_hours=market_hours, day_high=price * 1.01, day_low=price * 0.99, open_price=price,
                       previous_close=price * 0.995, change_percent=0.5, last_size=last_size, exchange="NMS")
    return json.dumps({"type": "pricing", "message": base64.b64encode(data.SerializeToString()).decode()})


class LocalStreamer:
    def __init__(self) -> None:
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/?version=2"
        self._lock = threading.Lock()
        self._subscribed: dict[ServerConnection, set[str]] = {}
        self._down = threading.Event()
        self.connections = 0  # accepted while up
        self.sent = 0
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalStreamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.drop()
        self._server.shutdown()
        self._thread.join(timeout=10)

    def _handle(self, conn: ServerConnection) -> None:
        if self._down.is_set():
            conn.close(1013, "try again later")
            return
        with self._lock:
            self.connections += 1
            self._subscribed[conn] = set()
        try:
            for raw in conn:
                wanted = json.loads(raw).get("subscribe", [])
                with self._lock:
                    self._subscribed[conn].update(wanted)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._subscribed.pop(conn, None)

    def subscribers(self, symbol: str) -> int:
        with self._lock:
            return sum(symbol in s for s in self._subscribed.values())

    def push(self, symbol: str, price: float, at: datetime, **fields: Any) -> None:
        """One print to every connection subscribed to the symbol."""
        message = pricing_message(symbol, price, at, **fields)
        with self._lock:
            targets = [c for c, s in self._subscribed.items() if symbol in s]
        for conn in targets:
            try:
                conn.send(message)
                self.sent += 1
            except ConnectionClosed:
                pass

    def drop(self) -> None:
        """The streamer goes away mid-session: open connections closed, new ones refused."""
        self._down.set()
        with self._lock:
            conns = list(self._subscribed)
        for conn in conns:
            conn.close(1001, "going away")

    def restore(self) -> None:
        self._down.clear()
