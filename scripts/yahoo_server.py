"""A local Yahoo Finance quote server for benchmarks and the local stack: the cookie + crumb
handshake, the batch quote endpoint, answering every asked symbol from one recorded quote
entry, and the ticker search (every typed ticker is known, as "<SYMBOL> Bench Inc.").

    with LocalYahoo(template) as yahoo:     # template: one entry of a recorded quoteResponse.result
        env = yahoo.env()                   # YAHOO_FINANCE_URL, YAHOO_COOKIE_URL for the producer
        ...
        yahoo.count(QUOTE)                  # quote requests answered so far

Each answer moves the entry to now (regularMarketTime) and gives the symbol its own price
(stable per symbol, a small step each answer) and the name "<SYMBOL> Bench Inc.". Without the
cookie the crumb is refused and without the crumb a quote request answers 401 Invalid Crumb,
as Yahoo does. The paths and the cookie are the ones tests/support/yahoo_api.py plays too.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

COOKIE = "/fc"  # stands in for https://fc.yahoo.com (YAHOO_COOKIE_URL)
CRUMB_PATH = "/v1/test/getcrumb"
QUOTE = "/v7/finance/quote"
CHART = "/v8/finance/chart/"
SEARCH = "/v1/finance/search"  # the dashboard's "add a ticker" check and suggestions
# fc.yahoo.com answers 404 and sets the A3 cookie (no Domain/Secure here: the server is http://127.0.0.1).
A3 = "A3=d=AQABBKx0ZmkCEH8pQ1xg7bd2nWc7lH2mV8EFEgEBCAHbZ2mcaeA0b2UA_eMBAAcIrHRmabwbVXo&S=AQAAAhx2Xx2Kf4h3ZQ"
SET_COOKIE = f"{A3}; Max-Age=31557600; Path=/; SameSite=None; HttpOnly"
BENCH_CRUMB = "bench.crumb-7Qx"
INVALID_CRUMB = b'{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'


class LocalYahoo:
    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.calls: Counter[str] = Counter()
        self._answers: Counter[str] = Counter()  # per symbol, for the price step
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start it first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {"YAHOO_FINANCE_URL": self.url, "YAHOO_COOKIE_URL": self.url + COOKIE}

    def count(self, path: str) -> int:
        with self._lock:
            return self.calls[path]

    def entry(self, symbol: str, now: datetime) -> dict[str, Any]:
        with self._lock:
            self._answers[symbol] += 1
            step = self._answers[symbol]
        base = 20.0 + zlib.crc32(symbol.encode()) % 500
        price = round(base * (1 + 0.001 * (step % 20)), 2)
        return {**self.template, "symbol": symbol, "longName": f"{symbol} Bench Inc.", "shortName": symbol,
                "regularMarketPrice": price, "regularMarketOpen": base, "regularMarketDayHigh": max(base, price),
                "regularMarketDayLow": min(base, price), "regularMarketPreviousClose": base,
                "regularMarketTime": int(now.timestamp()), "marketState": "REGULAR"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        yahoo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with yahoo._lock:
                    yahoo.calls[parts.path] += 1
                has_cookie = A3 in (self.headers.get("Cookie") or "")
                if parts.path == COOKIE:
                    self._send(404, b"<html><body>404 Not Found</body></html>", "text/html", {"Set-Cookie": SET_COOKIE})
                elif parts.path == CRUMB_PATH:
                    self._send(200, BENCH_CRUMB.encode(), "text/plain") if has_cookie else \
                        self._send(401, INVALID_CRUMB, "application/json")
                elif parts.path == QUOTE:
                    if query.get("crumb") != BENCH_CRUMB or not has_cookie:
                        self._send(401, INVALID_CRUMB, "application/json")
                        return
                    now = datetime.now(UTC)
                    result = [yahoo.entry(s, now) for s in query.get("symbols", "").split(",") if s]
                    self._send(200, json.dumps({"quoteResponse": {"result": result, "error": None}}).encode(),
                               "application/json;charset=utf-8")
                elif parts.path == SEARCH:
                    # Every well-formed query is a ticker here, named as the quote answer names it.
                    typed = query.get("q", "").strip().upper()
                    found = [{"symbol": typed, "shortname": typed, "longname": f"{typed} Bench Inc.",
                              "exchange": "NYQ", "exchDisp": "NYSE", "quoteType": "EQUITY"}] if typed else []
                    self._send(200, json.dumps({"count": len(found), "quotes": found, "news": []}).encode(),
                               "application/json;charset=utf-8")
                else:
                    self._send(404, b"not served here", "text/plain")

        return Handler

    def __enter__(self) -> LocalYahoo:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
